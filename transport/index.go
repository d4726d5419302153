package transport

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// BuiltIndex is an index description built into what a registry will
// hold: the OCI index with its digest, and each image of it built
// (Build), in the index's order. BuildIndex makes it once; the nix:
// source, the registry engine and inspect all take it.
type BuiltIndex struct {
	// Index is the description it was built from.
	Index    *description.Index
	Manifest []byte
	Digest   digest.Digest
	// Images are the index's images, as Index.Manifests lists them.
	Images []*Built

	byManifest map[digest.Digest]*Built
}

// BuildIndex builds idx, whose images (description.Index.ReadImages) are
// imgs. opts are passed to layers.Open when a layer is opened.
func BuildIndex(idx *description.Index, imgs []*description.Image, opts ...layers.Option) (*BuiltIndex, error) {
	if len(imgs) != len(idx.Manifests) {
		return nil, fmt.Errorf("index of %d images built with %d", len(idx.Manifests), len(imgs))
	}
	e, err := idx.Encode()
	if err != nil {
		return nil, err
	}
	bi := &BuiltIndex{Index: idx, Manifest: e.Bytes, Digest: e.Digest, byManifest: map[digest.Digest]*Built{}}
	for i, img := range imgs {
		b, err := Build(img, opts...)
		if err != nil {
			return nil, fmt.Errorf("manifests[%d] (%s): %w", i, idx.Manifests[i].Image, err)
		}
		if b.ManifestDigest != idx.Manifests[i].Digest {
			return nil, fmt.Errorf("manifests[%d] (%s): the image's manifest is %s, the index says %s: %w",
				i, idx.Manifests[i].Image, b.ManifestDigest, idx.Manifests[i].Digest, description.ErrIndexMismatch)
		}
		bi.Images = append(bi.Images, b)
		bi.byManifest[b.ManifestDigest] = b
	}
	return bi, nil
}

// ReadIndex reads the index description idx's images from the store
// (description.Index.ReadImages) and builds it. name names the index in
// errors.
func ReadIndex(name string, idx *description.Index, opts ...layers.Option) (*BuiltIndex, error) {
	imgs, err := idx.ReadImages(opts...)
	if err != nil {
		return nil, fmt.Errorf("index description %s: %w", name, err)
	}
	bi, err := BuildIndex(idx, imgs, opts...)
	if err != nil {
		return nil, fmt.Errorf("index description %s: %w", name, err)
	}
	return bi, nil
}

// Image returns the image whose manifest digest is d, or nil.
func (bi *BuiltIndex) Image(d digest.Digest) *Built { return bi.byManifest[d] }

// Platform is the platform of the i-th image, as the index gives it.
func (bi *BuiltIndex) Platform(i int) description.Platform { return bi.Index.Manifests[i].Platform }

// Open returns the contents of the blob d of any of the index's images
// (Built.Open).
func (bi *BuiltIndex) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	for _, b := range bi.Images {
		if b.has(d) {
			return b.Open(ctx, d)
		}
	}
	return nil, -1, fmt.Errorf("blob %s is in none of the index's images", d)
}

// has says whether d is one of b's blobs.
func (b *Built) has(d digest.Digest) bool {
	_, ok := b.layers[d]
	return ok || d == b.ConfigDigest
}
