// Package transport registers the read-only "nix:" transport of
// containers/image: nix:/nix/store/…-image.json names an image description,
// whose manifest and config are built deterministically from the description
// and whose layers are streamed from /nix/store, tar by tar (compressed on
// the fly when the description says so: the same bytes, and so the same
// digest, as at build time), only when a destination asks for them.
//
// nix:/nix/store/…-index.json names an index description (buildIndex):
// BuildIndex builds each of its images once, and the source serves the
// OCI index, each image's manifest by digest and every blob, so
// copy.Image's image list selections (all, system, index-only) apply.
//
// transport and its subpackages are the only nixpush packages that import
// containers/image (go.podman.io/image/v5).
package transport
