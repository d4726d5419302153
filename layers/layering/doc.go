// Package layering splits the closure of an image or a buildLayer call into
// layers. Split returns the layers bottom first; it reads no files and
// hashes nothing, so every rule below is decided from the closure graph
// and the already-built layers alone.
//
// # Explicit layers
//
// Already-built layers (the "layers" argument of buildImage and buildLayer)
// come first, bottom first:
//
//   - The layer files are flattened in list order. A layer file lists the
//     layers it depends on before its own, so dependencies stay below.
//   - Identical layers (same digest) are kept once, at their first place.
//   - A store path with the same rewrite that two of these layers claim
//     stays only in the first one in list order. A later layer that loses
//     paths this way is hashed again, without them, when the image is
//     built; a later layer left without paths is dropped.
//   - Every path an explicit layer keeps is removed from the layers
//     computed below: it is already in the image.
//
// # Computed layers
//
// The rest of the closure is split by popularity under a budget maxLayers
// (at least 1), the number of computed layers:
//
//   - The closure is the deps, the copyToRoot paths, and everything they
//     refer to, transitively.
//   - The popularity of a store path is the number of paths of that
//     closure which depend on it, directly or not (its ancestors).
//   - Paths are ranked by popularity, highest first; ties are broken by
//     the store path, bytewise ascending. The ranking depends on nothing
//     else, so it is stable from one build to the next.
//   - The first maxLayers-1 paths get a layer each, the most popular at
//     the bottom; all remaining paths share one last layer.
//   - copyToRoot paths (rewrite "/") go into the last computed layer, or
//     a layer of their own if nothing else is left to place. A copyToRoot
//     path is placed under /nix/store as well only if another path of the
//     closure refers to it, or it is also listed in deps; the paths it
//     refers to always are.
//   - A perms rule goes into every computed layer when it has no path, and
//     into the layer holding its path otherwise.
//
// # Limits
//
// An image with more than MaxImageLayers layers in total (explicit plus
// computed) is an error naming the count: overlay filesystems cannot stack
// more than that many lower directories.
package layering
