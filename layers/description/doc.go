// Package description reads, validates and writes nixpush image
// descriptions: the small JSON files Nix builds instead of image tarballs.
//
// A description (version 1) holds the image config, the platform, the
// creation time and, for each layer, the store paths it holds (with their
// NAR hashes, rewrites and perms rules) and the digest and size its tar had
// when Nix built the description. docs/description.md documents every field.
//
// Reading is strict: unknown fields, unknown versions, and missing or
// malformed fields are errors naming the field with its full path
// ("layers[3].paths[0].narSize: …"). A description is read only from a
// regular file of at most MaxFileSize bytes, and what could only fail
// later is refused up front: digests other than sha256, an unknown CPU
// variant, uid/gid outside 0…2^32-1, more than MaxLayers layers, a config
// over MaxConfigSize.
//
// Version 3 adds manifest annotations (Image.Annotations) and index
// descriptions (Index, ReadAnyFile tells them apart): one tag for the
// images of several platforms, each named by the store path of its image
// description with the manifest digest, size and platform it builds to.
// Index.ReadImages reads those files beneath the store directory without
// following a symlink and checks each; Index.Encode gives the OCI index's
// bytes and digest, at build time as at push time.
package description
