package description

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// MaxLayers is the most layers an image may have: overlayfs stacks at most
// 128 lower directories, and a container needs one more.
const MaxLayers = 127

// ErrTooManyLayers is wrapped by the error for more than MaxLayers layers.
var ErrTooManyLayers = errors.New("too many layers")

// ErrTooLarge is wrapped by the error for an image config over
// MaxConfigSize.
var ErrTooLarge = errors.New("too large")

// osArch matches Go's GOOS/GOARCH spelling, which OCI uses.
var osArch = regexp.MustCompile(`^[a-z0-9]+$`)

// variants are the CPU variants of the architectures that have them, as
// the OCI image index's platform table lists them (arm v6, v7, v8; arm64
// v8) and as containerd's platform matcher also knows them (arm v5;
// arm64 v8.x and v9.x; amd64 v1 to v4, the GOAMD64 levels). A variant
// that matches nothing here matches no runtime's platform either: such an
// image is pushed fine and then never chosen for a pull.
var variants = map[string]struct {
	re   *regexp.Regexp
	want string
}{
	"amd64": {regexp.MustCompile(`^v[1-4]$`), "v1 to v4"},
	"arm":   {regexp.MustCompile(`^v[5-8]$`), "v5 to v8"},
	"arm64": {regexp.MustCompile(`^v[89](\.[0-9])?$`), "v8, v9, v8.0 … v9.9"},
}

// otherVariant is what a variant of another architecture must look like:
// the spec lists none, so only the spelling is checked (lower case, no
// "/", no spaces), as platform strings compare it.
var otherVariant = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

func checkVariant(arch, variant string) error {
	if variant == "" {
		return nil
	}
	if v, ok := variants[arch]; ok && !v.re.MatchString(variant) {
		return fmt.Errorf("variant: %q is not a CPU variant of %s (%s)", variant, arch, v.want)
	}
	if !otherVariant.MatchString(variant) {
		return fmt.Errorf("variant: %q is not a CPU variant such as v8", variant)
	}
	return nil
}

// checkDigest checks a layer digest: present, well-formed and sha256, the
// only algorithm nixpush hashes layers with.
func checkDigest(field string, d digest.Digest) error {
	if d == "" {
		return fmt.Errorf("%s: missing", field)
	}
	// Before Validate, whose verdict on another algorithm depends on the
	// hash functions linked into the binary.
	if alg, _, ok := strings.Cut(string(d), ":"); ok && alg != string(digest.SHA256) {
		return fmt.Errorf("%s: %s: algorithm %q is not supported, layers are hashed with sha256", field, d, alg)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// Validate checks an Image. Errors name the field at fault
// ("layers[1].paths[0].narHash: …").
func (img *Image) Validate() error {
	if err := checkVersion(img.Version, img.features()); err != nil {
		return err
	}
	if img.Architecture == "" {
		return fmt.Errorf("architecture: missing")
	}
	if !osArch.MatchString(img.Architecture) {
		return fmt.Errorf("architecture: %q is not a GOARCH name such as amd64", img.Architecture)
	}
	if img.OS == "" {
		return fmt.Errorf("os: missing")
	}
	if !osArch.MatchString(img.OS) {
		return fmt.Errorf("os: %q is not a GOOS name such as linux", img.OS)
	}
	if err := checkVariant(img.Architecture, img.Variant); err != nil {
		return err
	}
	if img.Created.IsZero() {
		return fmt.Errorf("created: missing")
	}
	if err := checkAnnotations(img.Annotations); err != nil {
		return err
	}
	if len(img.Layers) == 0 {
		return fmt.Errorf("layers: an image needs at least one layer")
	}
	if len(img.Layers) > MaxLayers {
		return fmt.Errorf("layers: %d layers, more than the %d an overlay filesystem can stack: %w", len(img.Layers), MaxLayers, ErrTooManyLayers)
	}
	seen := map[string]int{}
	for i, l := range img.Layers {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("layers[%d].%w", i, err)
		}
		if j, dup := seen[l.Digest.String()]; dup {
			return fmt.Errorf("layers[%d].digest: %s is also layers[%d]", i, l.Digest, j)
		}
		seen[l.Digest.String()] = i
	}
	if img.SBOM != nil {
		if err := img.SBOM.Validate(MediaTypeSPDX); err != nil {
			return fmt.Errorf("sbom.%w", err)
		}
	}
	if err := img.checkBaseHistory(); err != nil {
		return err
	}
	return img.checkConfigSize()
}

// Validate checks one Layer. The error starts with the field name, so a
// caller can prefix it with the layer's position.
func (l *Layer) Validate() error {
	if err := checkDigest("digest", l.Digest); err != nil {
		return err
	}
	if err := checkDigest("diffID", l.DiffID); err != nil {
		return err
	}
	if l.Size <= 0 {
		return fmt.Errorf("size: missing or not positive")
	}
	if l.Blob != nil {
		return l.validateBlob()
	}
	if l.Compression == nil && l.DiffID != l.Digest {
		return fmt.Errorf("diffID: %s differs from digest %s, but the layer is uncompressed", l.DiffID, l.Digest)
	}
	if l.Compression != nil {
		if err := l.Compression.Validate(); err != nil {
			return fmt.Errorf("compression.%w", err)
		}
	}
	if want := LayerMediaType(l.Compression); l.MediaType != want {
		return fmt.Errorf("mediaType: %q, want %q for this layer's compression", l.MediaType, want)
	}
	if l.MTime.IsZero() || l.MTime.Before(time.Unix(0, 0)) {
		return fmt.Errorf("mtime: missing or before 1970")
	}
	if err := l.Spec.Validate(); err != nil {
		return err
	}
	return nil
}

// checkAnnotations checks the keys of an annotations map: OCI gives them
// no grammar, but an empty key names nothing.
func checkAnnotations(a map[string]string) error {
	if _, ok := a[""]; ok {
		return fmt.Errorf("annotations[\"\"]: an empty annotation key")
	}
	return nil
}
