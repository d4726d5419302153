package description

import (
	"fmt"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
)

// BlobRef makes a layer a blob layer (version 3, "blob layers"): its blob
// is a file in the store, pushed as it is, never unpacked or recompressed.
// pullImage writes a base image's layers so, and fromImage lists them.
type BlobRef struct {
	// Path is the store path holding the file (a pullImage output).
	Path string `json:"path"`
	// File is the blob's clean relative path beneath Path
	// ("blobs/sha256/<hex>").
	File string `json:"file"`
	// Repository is the repository the blob was pulled from
	// ("registry.example.com/base"), if known: a push to that registry
	// tries a cross-repository mount from it before uploading.
	Repository string `json:"repository,omitempty"`
}

var featBlob = feature{"blob layers", 3}

// blobMediaTypes are the media types a blob layer may have: the OCI layer
// types. A pulled Docker layer (application/vnd.docker.image.rootfs.diff.tar.gzip)
// is the same bytes as the OCI gzip type and is described with it.
var blobMediaTypes = map[string]bool{
	ocispec.MediaTypeImageLayer:     true,
	ocispec.MediaTypeImageLayerGzip: true,
	ocispec.MediaTypeImageLayerZstd: true,
}

// validateBlob checks a blob layer's own fields; digest, diffID and size
// are checked by Validate.
func (l *Layer) validateBlob() error {
	b := l.Blob
	switch {
	case len(l.Paths) > 0:
		return fmt.Errorf("paths: a blob layer has none (its bytes are blob.file)")
	case len(l.Perms) > 0:
		return fmt.Errorf("perms: a blob layer has none (its bytes are blob.file)")
	case !l.MTime.IsZero():
		return fmt.Errorf("mtime: a blob layer has none (its bytes are blob.file)")
	case l.Compression != nil:
		return fmt.Errorf("compression: a blob layer has none (its mediaType says how blob.file is compressed)")
	}
	if err := layers.ValidateStorePath(b.Path); err != nil {
		return fmt.Errorf("blob.path: %w", err)
	}
	if err := layers.ValidateBlobFile(b.File); err != nil {
		return fmt.Errorf("blob.file: %w", err)
	}
	if b.Repository != "" {
		if err := checkRepository(b.Repository); err != nil {
			return fmt.Errorf("blob.repository: %w", err)
		}
	}
	if !blobMediaTypes[l.MediaType] {
		return fmt.Errorf("mediaType: %q is not an OCI layer type (%s, %s or %s)", l.MediaType,
			ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd)
	}
	if l.MediaType == ocispec.MediaTypeImageLayer && l.DiffID != l.Digest {
		return fmt.Errorf("diffID: %s differs from digest %s, but the layer is uncompressed", l.DiffID, l.Digest)
	}
	return nil
}

// checkRepository accepts a fully qualified repository name, without tag
// or digest: "registry.example.com/base", "docker.io/library/busybox".
func checkRepository(s string) error {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if !reference.IsNameOnly(named) || named.Name() != s {
		return fmt.Errorf("%q is not a fully qualified repository name without tag or digest (such as %s)", s, named.Name())
	}
	return nil
}

// baseLayers is how many of the image's layers the base's history
// (BaseHistory) describes: its entries that are not empty_layer.
func (img *Image) baseLayers() int {
	n := 0
	for _, h := range img.BaseHistory {
		if !h.EmptyLayer {
			n++
		}
	}
	return n
}

// checkBaseHistory checks that BaseHistory describes no more layers than
// the image has.
func (img *Image) checkBaseHistory() error {
	if n := img.baseLayers(); n > len(img.Layers) {
		return fmt.Errorf("baseHistory: %d entries describe layers, but the image has %d layers", n, len(img.Layers))
	}
	return nil
}

// Annotations of the manifest descriptor in the index.json of a layout
// that pullImage wrote (nixpush fetch-image): where the image was pulled
// from. fromImage reads the first for blob layers' Repository.
const (
	// AnnotationPulledName is the repository, fully qualified
	// ("registry.example.com/base").
	AnnotationPulledName = "io.nixpush.pull.name"
	// AnnotationPulledDigest is the digest the image was pulled by: its
	// manifest's, or the index's it was chosen from.
	AnnotationPulledDigest = "io.nixpush.pull.digest"
)
