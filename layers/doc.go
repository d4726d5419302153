// Package layers turns sets of Nix store paths into deterministic,
// uncompressed tar layers and hashes them in one streaming pass.
package layers
