package transport

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers/description"
)

// Built is an image's manifest and config as served by the nix: transport.
type Built struct {
	Manifest       []byte
	ManifestDigest digest.Digest
	Config         []byte
	ConfigDigest   digest.Digest
}

// Build makes the OCI manifest and config of an image description. They
// depend only on the description: the same description gives the same
// bytes, and so the same manifest digest, on every machine. Nothing here
// reads the clock, the host or the store.
func Build(img *description.Image) (*Built, error) {
	cfg, err := json.Marshal(imageConfig(img))
	if err != nil {
		return nil, fmt.Errorf("encoding image config: %w", err)
	}
	cfgDigest := digest.FromBytes(cfg)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    cfgDigest,
			Size:      int64(len(cfg)),
		},
		Layers: make([]ocispec.Descriptor, len(img.Layers)),
	}
	for i, l := range img.Layers {
		m.Layers[i] = ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
	}
	man, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding image manifest: %w", err)
	}
	return &Built{Manifest: man, ManifestDigest: digest.FromBytes(man), Config: cfg, ConfigDigest: cfgDigest}, nil
}

// imageConfig is the OCI image config of img. Times are written in UTC so
// the bytes do not depend on the zone the description was written in;
// encoding/json writes struct fields in declaration order and map keys
// sorted, so the encoding is stable.
func imageConfig(img *description.Image) ocispec.Image {
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
	for i, l := range img.Layers {
		// Layers are uncompressed: the diff ID is the layer digest.
		c.RootFS.DiffIDs[i] = l.Digest
		c.History = append(c.History, ocispec.History{
			Created:   &created,
			CreatedBy: l.History.CreatedBy,
			Comment:   l.History.Comment,
		})
	}
	return c
}
