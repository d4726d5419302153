package description

import (
	"fmt"
	"regexp"
	"time"
)

// osArch matches Go's GOOS/GOARCH spelling, which OCI uses.
var osArch = regexp.MustCompile(`^[a-z0-9]+$`)

// Validate checks an Image. Errors name the field at fault
// ("layers[1].paths[0].narHash: …").
func (img *Image) Validate() error {
	if err := checkVersion(img.Version); err != nil {
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
	if img.Created.IsZero() {
		return fmt.Errorf("created: missing")
	}
	if len(img.Layers) == 0 {
		return fmt.Errorf("layers: an image needs at least one layer")
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
	return nil
}

// Validate checks one Layer. The error starts with the field name, so a
// caller can prefix it with the layer's position.
func (l *Layer) Validate() error {
	if l.Digest == "" {
		return fmt.Errorf("digest: missing")
	}
	if err := l.Digest.Validate(); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	if l.DiffID == "" {
		return fmt.Errorf("diffID: missing")
	}
	if l.DiffID != l.Digest {
		return fmt.Errorf("diffID: %s differs from digest %s, but layers are uncompressed", l.DiffID, l.Digest)
	}
	if l.Size <= 0 {
		return fmt.Errorf("size: missing or not positive")
	}
	if l.MediaType != MediaTypeLayer {
		return fmt.Errorf("mediaType: %q, want %q", l.MediaType, MediaTypeLayer)
	}
	if l.MTime.IsZero() || l.MTime.Before(time.Unix(0, 0)) {
		return fmt.Errorf("mtime: missing or before 1970")
	}
	if err := l.Spec.Validate(); err != nil {
		return err
	}
	return nil
}
