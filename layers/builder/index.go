package builder

import (
	"context"
	"fmt"

	"github.com/nixpush/nixpush/internal/nixattrs"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// IndexAttrs are the structured attributes of a buildIndex derivation.
type IndexAttrs struct {
	// IndexName and ImageTag are the index's name and, when set
	// explicitly, tag.
	IndexName string  `json:"indexName"`
	ImageTag  *string `json:"imageTag"`
	// Images are the store paths of image descriptions (buildImage
	// outputs), one per platform.
	Images []string `json:"images"`
	// Annotations are the OCI index's annotations.
	Annotations map[string]string `json:"annotations"`
}

// BuildIndex computes the index description a buildIndex derivation
// writes: each image's manifest digest, size and platform, read from its
// description in the store (opts give the root), and the index's own
// digest. Two images of the same platform are an error naming both.
func BuildIndex(_ context.Context, a *IndexAttrs, opts ...Option) (*description.Index, error) {
	if a.IndexName == "" {
		return nil, fmt.Errorf("indexName: missing")
	}
	if len(a.Images) == 0 {
		return nil, fmt.Errorf("images: an index needs at least one image")
	}
	o := makeOptions(opts)
	idx := &description.Index{Version: description.Version, Name: a.IndexName, Annotations: a.Annotations}
	if a.ImageTag != nil {
		if err := checkTag(*a.ImageTag); err != nil {
			return nil, err
		}
		idx.Tag = *a.ImageTag
	}
	for i, p := range a.Images {
		b, err := layers.ReadStoreFile(p, description.MaxFileSize, o.layerOpts()...)
		if err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		if description.IsIndex(b) {
			return nil, fmt.Errorf("images[%d]: %s is an index, not an image (buildImage's result)", i, p)
		}
		img, err := description.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("images[%d]: image description %s: %w", i, p, err)
		}
		m, err := description.ManifestFor(p, img)
		if err != nil {
			return nil, fmt.Errorf("images[%d] (%s): %w", i, p, err)
		}
		idx.Manifests = append(idx.Manifests, m)
	}
	e, err := idx.Encode()
	if err != nil {
		return nil, err
	}
	idx.Digest = e.Digest
	if err := idx.Validate(); err != nil {
		return nil, fmt.Errorf("index %s: %w", a.IndexName, err)
	}
	return idx, nil
}

// WriteIndex reads the structured attributes in attrsFile, builds the
// index description and writes it to outputs.out.
func WriteIndex(ctx context.Context, attrsFile string, opts ...Option) error {
	var a IndexAttrs
	_, out, err := nixattrs.Read(attrsFile, &a)
	if err != nil {
		return err
	}
	idx, err := BuildIndex(ctx, &a, opts...)
	if err != nil {
		return err
	}
	return writeJSON(out, idx)
}
