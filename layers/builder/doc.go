// Package builder is what runs inside the derivations of nix/default.nix.
//
// Each derivation uses structured attributes (__structuredAttrs = true), so
// Nix hands the builder one JSON file, .attrs.json in the build directory,
// holding every attribute of the derivation, the output path under
// "outputs.out" and, under "closure", the closure graph that
// exportReferencesGraph.closure asked for (see package closure). The
// builder reads that file (the CLI passes its name in; this package reads
// no environment variable), splits the closure into layers with package
// layering, hashes the layers whose digest is not known yet, several at
// once, and writes a description to outputs.out:
//
//   - WriteLayerFile, for buildLayer: a description.LayerFile holding the
//     layers the call depends on, bottom first, then its own.
//   - WriteImage, for buildImage: a description.Image, with every layer
//     inlined, so the image's JSON refers to exactly the store paths its
//     layers hold and to nothing else (not to layer files, not to nixpush).
//   - WriteConfig, for the small carrier derivation of buildImage: it
//     writes the image config as JSON, so that the carrier's references
//     are exactly the store paths the config names ("${busybox}/bin/sh").
//     WriteImage adds those paths, with their closures, to the image, and
//     leaves the carrier itself out.
//   - WriteIndex, for buildIndex: a description.Index of the image
//     descriptions it is given (read from the store, each checked), with
//     each manifest digest and platform and the index's own digest.
//   - WriteNixDB, for the Nix database of buildImage's
//     initializeNixDatabase: it computes the image's layering from the
//     image's own attributes (the same code as WriteImage, hashing
//     nothing) and registers the store paths it places (package nixdb).
//     WriteImage, given the database in nixDatabase, checks that the
//     database refers to exactly those paths.
//
// Two attributes take store paths out: ignore (the closure is walked
// without entering an ignored path) and includeStorePaths = false (the
// computed layers keep only the copyToRoot contents).
//
// The attributes read are listed on Attrs; nix/default.nix sets them and
// docs/nix-api.md describes them from the user's side.
package builder
