package pull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// Lock is what nixpush lock prints: the arguments of pullImage that fetch
// the image, pinned.
type Lock struct {
	ImageName   string `json:"imageName"`
	ImageDigest string `json:"imageDigest"`
	// Sha256 is the NAR hash of the layout pullImage writes, SRI form.
	Sha256  string `json:"sha256"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Variant string `json:"variant,omitempty"`
}

// Resolve turns ref ("NAME", "NAME:TAG" or "NAME@sha256:…") into
// NAME@DIGEST: a tag (latest when there is none) is resolved by fetching
// its manifest, whose digest is that of the bytes served, an index's when
// the tag names one.
func Resolve(ctx context.Context, ref string, opts ...Option) (reference.Canonical, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if c, ok := named.(reference.Canonical); ok {
		return ParseDigested(c.String())
	}
	named = reference.TagNameOnly(named)
	src, _, done, err := o.openSource(ctx, named)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", named, err)
	}
	defer done()
	mb, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", named, err)
	}
	c, err := reference.WithDigest(reference.TrimNamed(named), digest.FromBytes(mb))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// MakeLock resolves ref, fetches the image into a temporary directory
// exactly as pullImage does (Fetch) and returns its pin, with the NAR hash
// of what was fetched. The directory is removed.
func MakeLock(ctx context.Context, ref string, opts ...Option) (*Lock, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	c, err := Resolve(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "nixpush-lock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "image")
	if _, err := Fetch(ctx, c.String(), dir, opts...); err != nil {
		return nil, err
	}
	h, err := NARHash(dir)
	if err != nil {
		return nil, err
	}
	return &Lock{ImageName: c.Name(), ImageDigest: c.Digest().String(), Sha256: h, OS: o.os, Arch: o.arch, Variant: o.variant}, nil
}
