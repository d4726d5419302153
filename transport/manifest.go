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
	cfg, err := img.ConfigJSON()
	if err != nil {
		return nil, err
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
