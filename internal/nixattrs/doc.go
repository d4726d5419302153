// Package nixattrs reads the structured attributes file (.attrs.json) that
// Nix writes into the build directory of a derivation with
// __structuredAttrs = true: the one reader of nixpush's builder commands
// (layer, image, write-config, write-plan and the apps' writer).
package nixattrs
