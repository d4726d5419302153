// Package sbom writes the software bill of materials of an image
// description: an SPDX 2.3 JSON document of exactly the store paths its
// layers hold, made at build time (buildImage's "sbom" output) and pushed
// beside the image as an OCI referrer of its manifest.
//
// The document has one package per store path: its name and version split
// from the store path's name as Nix's builtins.parseDrvName splits them,
// its NAR hash as a SHA256 checksum (hex), and the store path itself as an
// external reference (category OTHER, type "nix-store-path"). One more
// package stands for the image: its manifest digest is the package's SHA256
// checksum and version, and its purl (pkg:oci/…@sha256:…) names it. The
// document DESCRIBES the image, the image CONTAINS each store path, and
// each store path DEPENDS_ON the store paths it refers to (from the
// references graph Nix exports to the builder).
//
// The bytes depend only on the description, its manifest digest and the
// graph: packages are sorted by store path, relationships by their
// elements, the creation time is the image's "created", the document
// namespace is derived from the image name and manifest digest, and the
// creator is "Tool: nixpush" without a version. The document is written
// with github.com/spdx/tools-golang's SPDX 2.3 model.
package sbom
