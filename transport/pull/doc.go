// Package pull fetches an image from a registry by digest into an OCI
// layout, byte for byte as the registry serves it: the builder of
// pullImage (nixpush fetch-image) and nixpush lock.
//
// The layout is deterministic, so that its NAR hash pins it: the files
// are index.json (written by nixpush, the same bytes for the same image
// and platform), oci-layout and blobs/sha256/<hex> for the chosen
// manifest, its config and each layer, nothing else; modes are fixed
// (0644 files, 0755 directories). When the reference names an index, the
// manifest of the asked platform is chosen as containers/image chooses
// it; the index itself is not stored. Every blob is checked against its
// digest and size as it is written, and a manifest or config against its
// digest before it is used: a registry serving other bytes fails the
// fetch, naming the reference and the digest.
//
// Layers are never unpacked, decompressed or recompressed. Layers of
// other media types than OCI's (tar, tar+gzip, tar+zstd) and Docker's
// gzip layer are refused (foreign and non-distributable layers cannot be
// re-pushed), as are schema 1 manifests.
//
// Inside the Nix sandbox there are no CA certificates: this package links
// golang.org/x/crypto/x509roots/fallback, whose roots crypto/x509 uses
// when the system has none (WithCACert adds a private CA).
package pull
