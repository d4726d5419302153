package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// source serves a nix: image. The manifest and config are built once, in
// memory; a layer's tar is produced only when GetBlob is called, which
// containers/image does only after the destination said it lacks the blob.
type source struct {
	ref    *Reference
	built  *Built
	layers map[digest.Digest]int // layer digest → index in ref.image.Layers
}

var _ types.ImageSource = (*source)(nil)

func newSource(ref *Reference) (*source, error) {
	built, err := Build(ref.image)
	if err != nil {
		return nil, fmt.Errorf("nix:%s: %w", ref.path, err)
	}
	s := &source{ref: ref, built: built, layers: make(map[digest.Digest]int, len(ref.image.Layers))}
	for i, l := range ref.image.Layers {
		s.layers[l.Digest] = i
	}
	return s, nil
}

func (s *source) Reference() types.ImageReference { return s.ref }

func (s *source) Close() error { return nil }

// GetManifest returns the OCI image manifest. A nix: image is a single
// image, never a list, so instanceDigest must be nil.
func (s *source) GetManifest(ctx context.Context, instanceDigest *digest.Digest) ([]byte, string, error) {
	if instanceDigest != nil {
		return nil, "", fmt.Errorf("nix:%s: manifest %s: a nix: image has no manifest list", s.ref.path, instanceDigest)
	}
	return s.built.Manifest, ocispec.MediaTypeImageManifest, nil
}

// HasThreadSafeGetBlob reports that layers may be streamed concurrently:
// each GetBlob opens its own pipe.
func (s *source) HasThreadSafeGetBlob() bool { return true }

// GetBlob returns the config, or streams a layer's tar from the store. The
// stream is hashed as it goes (unless the reference is CheckedByCaller); if
// it does not end with the described digest and size, its last Read returns
// a *LayerError instead of io.EOF, so the destination abandons the blob.
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	if info.Digest == s.built.ConfigDigest {
		return io.NopCloser(bytes.NewReader(s.built.Config)), int64(len(s.built.Config)), nil
	}
	i, ok := s.layers[info.Digest]
	if !ok {
		return nil, -1, fmt.Errorf("nix:%s: blob %s is not in the image", s.ref.path, info.Digest)
	}
	l := s.ref.image.Layers[i]
	open := layers.Open
	if s.ref.unhashed {
		open = layers.Stream
	}
	rc := open(ctx, l.Spec, l.Digest, l.Size, s.ref.opts...)
	return &layerReader{rc: rc, index: i, layer: &l}, l.Size, nil
}

// GetSignatures returns no signatures: a description carries none.
func (s *source) GetSignatures(ctx context.Context, instanceDigest *digest.Digest) ([][]byte, error) {
	return nil, nil
}

// LayerInfosForCopy returns nil: the manifest's layers are copied as they are.
func (s *source) LayerInfosForCopy(ctx context.Context, instanceDigest *digest.Digest) ([]types.BlobInfo, error) {
	return nil, nil
}

// layerReader names the layer in any error of the stream under it.
type layerReader struct {
	rc    io.ReadCloser
	index int
	layer *description.Layer
}

func (r *layerReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = &LayerError{Index: r.index, Digest: r.layer.Digest, Paths: r.layer.Paths, Err: err}
	}
	return n, err
}

func (r *layerReader) Close() error { return r.rc.Close() }

// LayerError is an error streaming one layer of a nix: image. When the
// layer's bytes no longer match the description, Err is a
// *layers.MismatchError.
type LayerError struct {
	Index  int
	Digest digest.Digest
	Paths  []layers.Path
	Err    error
}

func (e *LayerError) Error() string {
	var mm *layers.MismatchError
	if errors.As(e.Err, &mm) {
		// The mismatch names what changed; this names the layer.
		return fmt.Sprintf("layers[%d] (%s) does not match its description: %v", e.Index, e.Digest, e.Err)
	}
	return fmt.Sprintf("layers[%d] (%s): %v", e.Index, e.Digest, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// SizeError says a registry already holds a blob of an image under its
// digest, but with another size than the image gives it. The registry
// checked the digest of what it stored, so for a layer the description's
// size is wrong (or the registry misreports the size); the config is built
// by nixpush from the description, so for it the registry is wrong. A
// manifest with the description's size would describe a blob that is not
// there: no manifest is written.
type SizeError struct {
	// Index is the layer's position in the description; -1 for the config.
	Index     int
	Digest    digest.Digest
	Described int64 // the size the image gives the blob
	Stored    int64 // the size the registry reports (Content-Length of its HEAD)
}

func (e *SizeError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("config (%s) is %d bytes, but the registry holds that digest as %d bytes: the registry misreports the size",
			e.Digest, e.Described, e.Stored)
	}
	return fmt.Sprintf("layers[%d] (%s) is %d bytes in the registry, but the description says %d bytes: the description's size is wrong (or the registry misreports it)",
		e.Index, e.Digest, e.Stored, e.Described)
}

// CheckStoredSize returns a *SizeError when stored, the size a registry
// reports for the blob d of the image img (built into built), differs from
// the size the image gives it. A digest that is not in the image is not
// checked.
func CheckStoredSize(img *description.Image, built *Built, d digest.Digest, stored int64) error {
	if d == built.ConfigDigest {
		if want := int64(len(built.Config)); stored != want {
			return &SizeError{Index: -1, Digest: d, Described: want, Stored: stored}
		}
		return nil
	}
	for i, l := range img.Layers {
		if l.Digest == d && l.Size != stored {
			return &SizeError{Index: i, Digest: d, Described: l.Size, Stored: stored}
		}
	}
	return nil
}
