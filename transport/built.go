package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// Built is an image description built into what a registry will hold: the
// OCI manifest and config with their digests, and a way to open each blob.
// Build makes it once; the nix: source, the registry engine
// (transport/registry) and inspect all take it, and none rebuilds it.
type Built struct {
	// Image is the description it was built from.
	Image          *description.Image
	Manifest       []byte
	ManifestDigest digest.Digest
	Config         []byte
	ConfigDigest   digest.Digest

	opts   []layers.Option
	layers map[digest.Digest]int // layer digest → first index in Image.Layers
}

// Build makes the OCI manifest and config of an image description
// (description.Image.Encode). opts are passed to layers.Open
// when a layer is opened (tests use layers.WithRoot).
func Build(img *description.Image, opts ...layers.Option) (*Built, error) {
	cfg, m, err := img.Encode()
	if err != nil {
		return nil, err
	}
	b := &Built{
		Image: img, Config: cfg.Bytes, ConfigDigest: cfg.Digest, Manifest: m.Bytes, ManifestDigest: m.Digest,
		opts: opts, layers: make(map[digest.Digest]int, len(img.Layers)),
	}
	for i, l := range img.Layers {
		if _, ok := b.layers[l.Digest]; !ok {
			b.layers[l.Digest] = i
		}
	}
	return b, nil
}

// Blob is one blob of a built image: its config or a layer.
type Blob struct {
	ocispec.Descriptor
	// Index is the layer's position in the description (its first, when a
	// layer appears twice); -1 for the config.
	Index int
}

// IsConfig says whether the blob is the image's config.
func (b Blob) IsConfig() bool { return b.Index < 0 }

// Blobs returns the image's blobs, each digest once: the config, then the
// layers bottom first.
func (b *Built) Blobs() []Blob {
	out := []Blob{{Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: b.ConfigDigest, Size: int64(len(b.Config))}, Index: -1}}
	for i, l := range b.Image.Layers {
		if b.layers[l.Digest] == i && l.Digest != b.ConfigDigest {
			out = append(out, Blob{Descriptor: ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}, Index: i})
		}
	}
	return out
}

// Name names a blob for people: "config", or "layer 2/5 openssl-3.0.13"
// (its position, and its first store path without the hash; "+2" when it
// holds more).
func (b *Built) Name(bl Blob) string {
	if bl.IsConfig() {
		return "config"
	}
	ls := b.Image.Layers
	name := "(empty)"
	if blob := ls[bl.Index].Blob; blob != nil {
		name = "base " + blob.File
		if blob.Repository != "" {
			name = "base " + blob.Repository
		}
	} else if paths := ls[bl.Index].Paths; len(paths) > 0 {
		name = strings.TrimPrefix(paths[0].Path, layers.StoreDir+"/")
		if _, after, ok := strings.Cut(name, "-"); ok {
			name = after
		}
		if len(paths) > 1 {
			name += fmt.Sprintf(" +%d", len(paths)-1)
		}
	}
	return fmt.Sprintf("layer %d/%d %s", bl.Index+1, len(ls), name)
}

// Open returns the contents of the blob d and its size: the config from
// memory, or a layer's blob streamed from the store: its tar, compressed
// on the fly when the layer is compressed, or a blob layer's file as it
// is (beneath its store path, following no symlink). A layer's blob is hashed as it
// streams: if its bytes do not end with the described digest and size, its
// last Read returns a *description.LayerError wrapping a
// *layers.MismatchError (naming the store paths that changed) instead of
// io.EOF, and it stops as soon as it runs past its size, so a destination
// reading it abandons the blob. Every error of the stream names the layer.
func (b *Built) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	return b.open(ctx, d, (*description.Layer).Open)
}

// Stream is Open for a destination that checks each blob's digest itself
// (a registry: the registry engine): a blob layer's file (a base image's
// layer) is streamed as it is, checked for its size only, not hashed; the
// config and layers of store paths are as Open gives them. When the
// destination refuses the digest, Verify says whether the store is at
// fault.
func (b *Built) Stream(ctx context.Context, d digest.Digest) (io.ReadCloser, int64, error) {
	return b.open(ctx, d, (*description.Layer).Stream)
}

// open opens the blob d: the config from memory, a layer with open.
func (b *Built) open(ctx context.Context, d digest.Digest, open func(*description.Layer, context.Context, ...layers.Option) (io.ReadCloser, error)) (io.ReadCloser, int64, error) {
	if d == b.ConfigDigest {
		return io.NopCloser(bytes.NewReader(b.Config)), int64(len(b.Config)), nil
	}
	i, ok := b.layers[d]
	if !ok {
		return nil, -1, fmt.Errorf("blob %s is not in the image", d)
	}
	l := &b.Image.Layers[i]
	rc, err := open(l, ctx, b.opts...)
	if err != nil {
		return nil, -1, &description.LayerError{Index: i, Layer: l, Err: err}
	}
	return &layerReader{rc: rc, index: i, layer: l}, l.Size, nil
}

// Verify re-reads the layer d from the store and returns a
// *description.LayerError when it does not match the description; nil for
// the config and for a digest not in the image.
func (b *Built) Verify(ctx context.Context, d digest.Digest) error {
	i, ok := b.layers[d]
	if !ok || d == b.ConfigDigest {
		return nil
	}
	l := &b.Image.Layers[i]
	if err := l.Verify(ctx, b.opts...); err != nil {
		return &description.LayerError{Index: i, Layer: l, Err: err}
	}
	return nil
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
		err = &description.LayerError{Index: r.index, Layer: r.layer, Err: err}
	}
	return n, err
}

func (r *layerReader) Close() error { return r.rc.Close() }

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
// reports for the blob d of the image, differs from the size the image
// gives it. A digest that is not in the image is not checked.
func (b *Built) CheckStoredSize(d digest.Digest, stored int64) error {
	if d == b.ConfigDigest {
		if want := int64(len(b.Config)); stored != want {
			return &SizeError{Index: -1, Digest: d, Described: want, Stored: stored}
		}
		return nil
	}
	if i, ok := b.layers[d]; ok && b.Image.Layers[i].Size != stored {
		return &SizeError{Index: i, Digest: d, Described: b.Image.Layers[i].Size, Stored: stored}
	}
	return nil
}
