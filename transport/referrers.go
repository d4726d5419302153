package transport

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers/description"
)

// Referrer is an artifact pushed beside an image as an OCI 1.1 referrer of
// its manifest: an image manifest whose subject is the image's manifest,
// with an artifactType, the empty config and the artifact's files as its
// layers. An image's SBOM is one (Built.Referrers). Its manifest depends
// only on the description, so a re-push finds it under the same digest.
type Referrer struct {
	// Label names it for people: "SBOM".
	Label        string
	ArtifactType string
	Manifest     []byte
	Digest       digest.Digest
	// Blobs are the artifact manifest's blobs: the empty config, then
	// its layers.
	Blobs []ocispec.Descriptor

	files map[digest.Digest]func() ([]byte, error)
}

// Descriptor is the referrer's entry in a referrers list: its manifest,
// with its artifact type and annotations.
func (r *Referrer) Descriptor() ocispec.Descriptor {
	var m ocispec.Manifest
	_ = json.Unmarshal(r.Manifest, &m) // made by newReferrer
	return ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		Digest:       r.Digest,
		Size:         int64(len(r.Manifest)),
		ArtifactType: r.ArtifactType,
		Annotations:  m.Annotations,
	}
}

// Blob returns the contents of the blob d of the referrer: the empty
// config, or a file read from the store and checked against its digest.
func (r *Referrer) Blob(d digest.Digest) ([]byte, error) {
	if d == ocispec.DescriptorEmptyJSON.Digest {
		return []byte("{}"), nil
	}
	f, ok := r.files[d]
	if !ok {
		return nil, fmt.Errorf("%s: blob %s is not in it", r.Label, d)
	}
	return f()
}

// Referrers returns what is pushed beside the image as referrers of its
// manifest: its SBOM, when the description has one.
func (b *Built) Referrers() ([]*Referrer, error) {
	var out []*Referrer
	if a := b.Image.SBOM; a != nil {
		r, err := b.newReferrer("SBOM", a, "sbom.spdx.json")
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// SBOM reads the image's SBOM from the store, checked against the digest
// and size its description gives; nil without one.
func (b *Built) SBOM() ([]byte, error) {
	if b.Image.SBOM == nil {
		return nil, nil
	}
	return description.ReadAttachment(b.Image.SBOM, b.opts...)
}

// Annotations of a referrer manifest and its file.
const (
	annotationCreated = "org.opencontainers.image.created"
	annotationTitle   = "org.opencontainers.image.title"
)

// newReferrer makes the referrer that carries the attachment a, a file
// named title.
func (b *Built) newReferrer(label string, a *description.Attachment, title string) (*Referrer, error) {
	empty := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: ocispec.DescriptorEmptyJSON.Size}
	layer := ocispec.Descriptor{MediaType: a.MediaType, Digest: a.Digest, Size: a.Size, Annotations: map[string]string{annotationTitle: title}}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: a.MediaType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: b.ManifestDigest, Size: int64(len(b.Manifest))},
		// The image's own creation time, so the bytes stay the build's.
		Annotations: map[string]string{annotationCreated: b.Image.Created.UTC().Format(time.RFC3339)},
	}
	man, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s referrer manifest: %w", label, err)
	}
	return &Referrer{
		Label: label, ArtifactType: a.MediaType, Manifest: man, Digest: digest.FromBytes(man),
		Blobs: []ocispec.Descriptor{empty, layer},
		files: map[digest.Digest]func() ([]byte, error){
			a.Digest: func() ([]byte, error) { return description.ReadAttachment(a, b.opts...) },
		},
	}, nil
}
