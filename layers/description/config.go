package description

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxConfigSize is the largest image config, in bytes, that nixpush
// writes: containers/image refuses to read a bigger config blob
// (MaxConfigBodySize in go.podman.io/image/v5/internal/iolimits, which
// cannot be imported; transport's TestConfigSizeLimit fails if the two
// disagree), so an image with a bigger one could be pushed but not pulled
// or copied.
const MaxConfigSize = 4 << 20

// OCIConfig is the OCI image config of img, as the nix: transport serves
// it. Times are written in UTC so the bytes do not depend on the zone the
// description was written in.
func (img *Image) OCIConfig() ocispec.Image {
	created := img.Created.UTC()
	c := ocispec.Image{
		Created: &created,
		Platform: ocispec.Platform{
			Architecture: img.Architecture,
			OS:           img.OS,
			Variant:      img.Variant,
		},
		Config: img.Config,
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: make([]digest.Digest, len(img.Layers))},
	}
	// The base's history as it has it (fromImage), then one entry per
	// layer after the base's.
	c.History = append(c.History, img.BaseHistory...)
	base := img.baseLayers()
	for i, l := range img.Layers {
		// The diff ID is the uncompressed tar's digest: the layer digest
		// itself unless the layer is compressed.
		c.RootFS.DiffIDs[i] = l.DiffID
		if i < base {
			continue
		}
		c.History = append(c.History, ocispec.History{
			Created:   &created,
			CreatedBy: l.History.CreatedBy,
			Comment:   l.History.Comment,
		})
	}
	return c
}

// ConfigJSON is the encoded OCI image config of img: the bytes of its
// config blob. encoding/json writes struct fields in declaration order and
// map keys sorted, so the same description gives the same bytes.
func (img *Image) ConfigJSON() ([]byte, error) {
	b, err := json.Marshal(img.OCIConfig())
	if err != nil {
		return nil, fmt.Errorf("encoding image config: %w", err)
	}
	return b, nil
}

// checkConfigSize rejects an image whose config blob would be over
// MaxConfigSize, naming the field that takes the most room: one of
// config's ("config.Env") or the layers' history.
func (img *Image) checkConfigSize() error {
	b, err := img.ConfigJSON()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(b) <= MaxConfigSize {
		return nil
	}
	field, size := "layers[].history", 0
	for _, l := range img.Layers {
		h, _ := json.Marshal(l.History)
		size += len(h)
	}
	var parts map[string]json.RawMessage
	if c, err := json.Marshal(img.Config); err == nil && json.Unmarshal(c, &parts) == nil {
		for name, v := range parts {
			if len(v) > size || (len(v) == size && "config."+name < field) {
				field, size = "config."+name, len(v)
			}
		}
	}
	return fmt.Errorf("%s: %d bytes; the image config would be %d bytes, more than the %d (4 MiB) containers/image reads: %w",
		field, size, len(b), MaxConfigSize, ErrTooLarge)
}

// Manifest is the OCI image manifest of img, whose config blob is cfg (the
// bytes of ConfigJSON).
func (img *Image) Manifest(cfg []byte) ocispec.Manifest {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    digest.FromBytes(cfg),
			Size:      int64(len(cfg)),
		},
		Layers: make([]ocispec.Descriptor, len(img.Layers)),
	}
	for i, l := range img.Layers {
		m.Layers[i] = ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
	}
	m.Annotations = img.manifestAnnotations()
	return m
}

// manifestAnnotations are img's annotations as its manifest holds them:
// none without any, else with org.opencontainers.image.created set to the
// image's Created (RFC 3339, UTC) unless given.
func (img *Image) manifestAnnotations() map[string]string {
	if len(img.Annotations) == 0 {
		return nil
	}
	a := make(map[string]string, len(img.Annotations)+1)
	for k, v := range img.Annotations {
		a[k] = v
	}
	if _, ok := a[ocispec.AnnotationCreated]; !ok {
		a[ocispec.AnnotationCreated] = img.Created.UTC().Format(time.RFC3339)
	}
	return a
}

// Encoded is a document as a registry holds it: its bytes and their
// digest.
type Encoded struct {
	Bytes  []byte
	Digest digest.Digest
}

// Descriptor is the OCI descriptor of e as a blob or manifest of the given
// media type.
func (e Encoded) Descriptor(mediaType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: e.Digest, Size: int64(len(e.Bytes))}
}

func encode(v any, what string) (Encoded, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Encoded{}, fmt.Errorf("encoding %s: %w", what, err)
	}
	return Encoded{Bytes: b, Digest: digest.FromBytes(b)}, nil
}

// Encode returns the image's config blob and manifest, the bytes a
// registry will hold. They depend only on the description: the same
// description gives the same bytes, and so the same manifest digest, on
// every machine, at build time as at push time. Nothing here reads the
// clock, the host or the store.
func (img *Image) Encode() (config, manifest Encoded, err error) {
	cfg, err := img.ConfigJSON()
	if err != nil {
		return Encoded{}, Encoded{}, err
	}
	m, err := encode(img.Manifest(cfg), "image manifest")
	if err != nil {
		return Encoded{}, Encoded{}, err
	}
	return Encoded{Bytes: cfg, Digest: digest.FromBytes(cfg)}, m, nil
}
