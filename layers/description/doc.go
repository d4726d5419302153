// Package description reads, validates and writes nixpush image
// descriptions: the small JSON files Nix builds instead of image tarballs.
//
// A description (version 1) holds the image config, the platform, the
// creation time and, for each layer, the store paths it holds (with their
// NAR hashes, rewrites and perms rules) and the digest and size its tar had
// when Nix built the description. docs/description.md documents every field.
//
// Reading is strict: unknown fields, unknown versions, and missing or
// malformed fields are errors naming the field ("layers[1].digest: …").
package description
