package description

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/layers"
)

// MediaTypes of compressed layers, by layers.Compression algorithm.
var compressedMediaTypes = map[string]string{
	layers.Zstd: ocispec.MediaTypeImageLayerZstd,
	layers.Gzip: ocispec.MediaTypeImageLayerGzip,
}

// LayerMediaType is the media type of a layer compressed as c (nil:
// uncompressed).
func LayerMediaType(c *layers.Compression) string {
	if c == nil {
		return MediaTypeLayer
	}
	return compressedMediaTypes[c.Algorithm]
}

// MediaTypeLayer is the media type of an uncompressed layer. A compressed
// one's (LayerMediaType) is known at build time too: its digest is of the
// compressed bytes, which depend only on the tar, the algorithm and the
// level, and never change on the way to a registry.
const MediaTypeLayer = ocispec.MediaTypeImageLayer

// Image is an image description: everything needed to serve the image's
// manifest, config and layers, without any tarball in the store.
type Image struct {
	Version int `json:"version"`
	// Name and Tag are the image's default repository name and tag.
	Name string `json:"name,omitempty"`
	Tag  string `json:"tag,omitempty"`
	// Architecture and OS use Go's names (amd64, arm64; linux).
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
	// Created is the image's creation time in its config.
	Created time.Time `json:"created"`
	// Config is the runtime configuration (Entrypoint, Cmd, Env, …) with
	// the OCI image config's field names.
	Config ocispec.ImageConfig `json:"config"`
	// Annotations are the manifest's annotations (version 3); with any,
	// org.opencontainers.image.created defaults to Created (Manifest).
	// Labels stay in Config.
	Annotations map[string]string `json:"annotations,omitempty"`
	// BaseHistory, when set (version 3, "blob layers"), is the history of
	// the base image the first layers come from (fromImage), as the base
	// has it, empty_layer entries included: the config's history starts
	// with it, and each layer after the base's gets its own entry.
	BaseHistory []ocispec.History `json:"baseHistory,omitempty"`
	// Layers are bottom first.
	Layers []Layer `json:"layers"`
	// SBOM is the image's SPDX document (version 3, "sbom"), pushed as a
	// referrer of its manifest.
	SBOM *Attachment `json:"sbom,omitempty"`
}

// Layer is one layer of an image: what goes into it and what it hashes to.
type Layer struct {
	layers.Spec
	// Blob, when set, makes this a blob layer (version 3): its bytes are a
	// file in the store, kept as they are; it has no Spec.
	Blob      *BlobRef      `json:"blob,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	DiffID    digest.Digest `json:"diffID"`
	MediaType string        `json:"mediaType"`
	History   History       `json:"history"`
}

// History is the layer's entry in the image config's history.
type History struct {
	CreatedBy string `json:"created_by,omitempty"`
	Comment   string `json:"comment,omitempty"`
}

// LayerFile is what a buildLayer derivation writes: layers, bottom first,
// to be stacked into an image.
type LayerFile struct {
	Version int     `json:"version"`
	Layers  []Layer `json:"layers"`
}

// ErrVersion is returned for a description of a version this build does not
// know.
var ErrVersion = errors.New("unsupported description version")

// MaxFileSize is the largest image description or layer file read, in
// bytes. A description of 127 layers holding 100,000 store paths between
// them is about 25 MiB; anything bigger is not a description.
const MaxFileSize = 64 << 20

// ReadFile reads and validates an image description. name must be a
// regular file (or a symbolic link to one) of at most MaxFileSize bytes.
func ReadFile(name string) (*Image, error) {
	b, err := jsonfield.ReadFile(name, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("reading image description: %w", err)
	}
	img, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("image description %s: %w", name, err)
	}
	return img, nil
}

// Parse decodes and validates an image description.
func Parse(b []byte) (*Image, error) {
	var img Image
	if err := decode(b, &img); err != nil {
		return nil, err
	}
	if err := img.Validate(); err != nil {
		return nil, err
	}
	return &img, nil
}

// ReadLayerFile reads and validates a buildLayer output, a regular file of
// at most MaxFileSize bytes.
func ReadLayerFile(name string) (*LayerFile, error) {
	b, err := jsonfield.ReadFile(name, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("reading layer file: %w", err)
	}
	return ParseLayerFile(name, b)
}

// ParseLayerFile decodes and validates the layer file name holds (b). A
// layer file holds layers of store paths only: a blob layer (an image's
// base) is refused, not dropped.
func ParseLayerFile(name string, b []byte) (*LayerFile, error) {
	var lf LayerFile
	if err := decode(b, &lf); err != nil {
		return nil, fmt.Errorf("layer file %s: %w", name, err)
	}
	if err := checkVersion(lf.Version, layersFeatures(lf.Layers)); err != nil {
		return nil, fmt.Errorf("layer file %s: %w", name, err)
	}
	if len(lf.Layers) > MaxLayers {
		return nil, fmt.Errorf("layer file %s: layers: %d layers, more than the %d an image may have: %w", name, len(lf.Layers), MaxLayers, ErrTooManyLayers)
	}
	for i, l := range lf.Layers {
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("layer file %s: layers[%d].%w", name, i, err)
		}
		if l.Blob != nil {
			return nil, fmt.Errorf("layer file %s: layers[%d].blob: a layer file holds only layers of store paths (a base image is fromImage)", name, i)
		}
	}
	return &lf, nil
}

// Marshal encodes v (an Image or a LayerFile) the one way nixpush writes
// descriptions: indented, keys in a fixed order, trailing newline.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode is strict: unknown fields and trailing data are errors, so a typo
// in a hand-written description is caught, not ignored.
func decode(b []byte, v any) error { return jsonfield.Strict(b, v) }
