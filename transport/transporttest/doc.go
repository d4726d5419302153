// Package transporttest makes nix: images for tests: fixture directories
// added to the real Nix store, layers hashed with layers.Digest, and image
// descriptions written to temporary files.
package transporttest
