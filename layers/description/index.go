package description

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/layers"
)

// Index is an index description (version 3 only): one tag for several
// platforms. It names the image description of each platform by its store
// path, with the manifest digest and size that image builds to, so that
// the index's own bytes and digest are known at build time, as an image's
// are.
type Index struct {
	Version int `json:"version"`
	// Name and Tag are the index's default repository name and tag.
	Name string `json:"name,omitempty"`
	Tag  string `json:"tag,omitempty"`
	// Digest is the digest of the OCI index Encode gives: written by the
	// builder, checked when read (optional).
	Digest digest.Digest `json:"digest,omitempty"`
	// Annotations are the OCI index's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Manifests are the images, one per platform, in the index's order.
	Manifests []IndexManifest `json:"manifests"`
}

// IndexManifest is one image of an index.
type IndexManifest struct {
	// Image is the store path of the image description (a file).
	Image string `json:"image"`
	// Digest and Size are the image's manifest's (Image.Encode).
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Platform is the image's: its os, architecture and variant.
	Platform Platform `json:"platform"`
}

// Platform is an image's platform, with Go's names as OCI uses them.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Platform is img's platform.
func (img *Image) Platform() Platform {
	return Platform{Architecture: img.Architecture, OS: img.OS, Variant: img.Variant}
}

// ErrIndexMismatch is wrapped by the error for an image that does not
// build to what its index description says (digest, size or platform).
var ErrIndexMismatch = errors.New("does not match the index")

// Validate checks an Index without reading its images. Errors name the
// field at fault ("manifests[1].platform: …").
func (idx *Index) Validate() error {
	if err := checkVersion(idx.Version, []feature{featIndex}); err != nil {
		return err
	}
	if err := checkAnnotations(idx.Annotations); err != nil {
		return err
	}
	if len(idx.Manifests) == 0 {
		return fmt.Errorf("manifests: an index needs at least one image")
	}
	seen := map[Platform]int{}
	for i, m := range idx.Manifests {
		if err := m.validate(); err != nil {
			return fmt.Errorf("manifests[%d].%w", i, err)
		}
		if j, dup := seen[m.Platform]; dup {
			return fmt.Errorf("manifests[%d].platform: %s is also the platform of manifests[%d] (%s and %s): an index holds one image per platform",
				i, m.Platform, j, idx.Manifests[j].Image, m.Image)
		}
		seen[m.Platform] = i
	}
	if idx.Digest != "" {
		if err := checkDigest("digest", idx.Digest); err != nil {
			return err
		}
		e, err := idx.Encode()
		if err != nil {
			return err
		}
		if e.Digest != idx.Digest {
			return fmt.Errorf("digest: %s, but the index encodes to %s", idx.Digest, e.Digest)
		}
	}
	return nil
}

func (m *IndexManifest) validate() error {
	if err := layers.ValidateStorePath(m.Image); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := checkDigest("digest", m.Digest); err != nil {
		return err
	}
	if m.Size <= 0 {
		return fmt.Errorf("size: missing or not positive")
	}
	return m.Platform.validate()
}

func (p Platform) validate() error {
	switch {
	case p.Architecture == "":
		return fmt.Errorf("platform.architecture: missing")
	case !osArch.MatchString(p.Architecture):
		return fmt.Errorf("platform.architecture: %q is not a GOARCH name such as amd64", p.Architecture)
	case p.OS == "":
		return fmt.Errorf("platform.os: missing")
	case !osArch.MatchString(p.OS):
		return fmt.Errorf("platform.os: %q is not a GOOS name such as linux", p.OS)
	}
	if err := checkVariant(p.Architecture, p.Variant); err != nil {
		return fmt.Errorf("platform.%w", err)
	}
	return nil
}

// OCIIndex is the OCI image index of idx: each image's manifest, with its
// platform, in idx's order, and idx's annotations.
func (idx *Index) OCIIndex() ocispec.Index {
	x := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, len(idx.Manifests)),
	}
	for i, m := range idx.Manifests {
		x.Manifests[i] = ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    m.Digest,
			Size:      m.Size,
			Platform:  &ocispec.Platform{Architecture: m.Platform.Architecture, OS: m.Platform.OS, Variant: m.Platform.Variant},
		}
	}
	if len(idx.Annotations) > 0 {
		x.Annotations = maps.Clone(idx.Annotations)
	}
	return x
}

// Encode returns the OCI index's bytes and digest, as a registry will hold
// them: the one encoding of an index, at build time (the builder writes
// its digest into the description) as at push time. It depends only on
// the description.
func (idx *Index) Encode() (Encoded, error) {
	return encode(idx.OCIIndex(), "image index")
}

// ManifestFor returns the entry of idx for img, the image description its
// manifests[i] names, with img's manifest digest and size and platform.
func ManifestFor(path string, img *Image) (IndexManifest, error) {
	_, m, err := img.Encode()
	if err != nil {
		return IndexManifest{}, err
	}
	return IndexManifest{Image: path, Digest: m.Digest, Size: int64(len(m.Bytes)), Platform: img.Platform()}, nil
}

// ReadImages reads the image description of each of idx's manifests from
// the store, beneath the store directory and following no symlink
// (layers.ReadStoreFile; opts give its root), and checks that each builds
// to the digest, size and platform idx gives it. Errors name the entry
// ("manifests[1] (/nix/store/…-image-hello.json): …").
func (idx *Index) ReadImages(opts ...layers.Option) ([]*Image, error) {
	imgs := make([]*Image, len(idx.Manifests))
	for i, m := range idx.Manifests {
		b, err := layers.ReadStoreFile(m.Image, MaxFileSize, opts...)
		if err != nil {
			return nil, fmt.Errorf("manifests[%d].image: %w", i, err)
		}
		img, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("manifests[%d] (%s): image description: %w", i, m.Image, err)
		}
		got, err := ManifestFor(m.Image, img)
		if err != nil {
			return nil, fmt.Errorf("manifests[%d] (%s): %w", i, m.Image, err)
		}
		switch {
		case got.Digest != m.Digest:
			return nil, fmt.Errorf("manifests[%d] (%s): the image's manifest is %s, the index says %s: %w", i, m.Image, got.Digest, m.Digest, ErrIndexMismatch)
		case got.Size != m.Size:
			return nil, fmt.Errorf("manifests[%d] (%s): the image's manifest is %d bytes, the index says %d: %w", i, m.Image, got.Size, m.Size, ErrIndexMismatch)
		case got.Platform != m.Platform:
			return nil, fmt.Errorf("manifests[%d] (%s): the image is for %s, the index says %s: %w", i, m.Image, got.Platform, m.Platform, ErrIndexMismatch)
		}
		imgs[i] = img
	}
	return imgs, nil
}

// ParseIndex decodes and validates an index description.
func ParseIndex(b []byte) (*Index, error) {
	var idx Index
	if err := decode(b, &idx); err != nil {
		return nil, err
	}
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	return &idx, nil
}

// ReadIndexFile reads and validates an index description, a regular file
// of at most MaxFileSize bytes. Its images are read by ReadImages.
func ReadIndexFile(name string) (*Index, error) {
	img, idx, err := ReadAnyFile(name)
	if err != nil {
		return nil, err
	}
	if img != nil {
		return nil, fmt.Errorf("index description %s: an image description, not an index (it has no \"manifests\")", name)
	}
	return idx, nil
}

// IsIndex says whether the JSON document b is an index description rather
// than an image description: an index has "manifests", an image has none.
// b that is not a JSON object is not an index (its error comes from
// Parse).
func IsIndex(b []byte) bool {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return false
	}
	_, ok := probe["manifests"]
	return ok
}

// ReadAnyFile reads a description that may be an image's or an index's
// (IsIndex), and returns the one it is.
func ReadAnyFile(name string) (*Image, *Index, error) {
	b, err := jsonfield.ReadFile(name, MaxFileSize)
	if err != nil {
		return nil, nil, fmt.Errorf("reading image description: %w", err)
	}
	if IsIndex(b) {
		idx, err := ParseIndex(b)
		if err != nil {
			return nil, nil, fmt.Errorf("index description %s: %w", name, err)
		}
		return nil, idx, nil
	}
	img, err := Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("image description %s: %w", name, err)
	}
	return img, nil, nil
}
