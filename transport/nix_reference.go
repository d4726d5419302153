package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// ErrReadOnly is returned when asked to write to, or delete, a nix: image.
var ErrReadOnly = errors.New(`"nix:" images can only be read from, not written to or deleted`)

// Reference is a nix: reference: an image description file, read and
// validated once when the reference is made.
type Reference struct {
	path     string
	image    *description.Image
	opts     []layers.Option
	unhashed bool // see CheckedByCaller
}

var _ types.ImageReference = (*Reference)(nil)

// NewReference reads the image description at path. opts are passed to
// layers.Open when a layer is streamed (tests use layers.WithRoot).
func NewReference(path string, opts ...layers.Option) (*Reference, error) {
	if path == "" {
		return nil, errors.New("nix: reference needs the path of an image description")
	}
	img, err := description.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &Reference{path: path, image: img, opts: opts}, nil
}

// NewReferenceFromImage makes a reference for an image description already
// in memory; name is what StringWithinTransport reports.
func NewReferenceFromImage(name string, img *description.Image, opts ...layers.Option) (*Reference, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("image description %s: %w", name, err)
	}
	return &Reference{path: name, image: img, opts: opts}, nil
}

// CheckedByCaller returns a copy of r whose layer streams are not hashed
// (layers.Stream), for a caller that hashes every blob it reads and
// refuses one whose digest differs, as containers/image's copy.Image does:
// one sha256 pass per layer instead of two. A stream whose size is wrong
// still ends in a *LayerError; when the caller fails on a digest, Explain
// names the layer and the store paths at fault.
func (r *Reference) CheckedByCaller() *Reference {
	c := *r
	c.unhashed = true
	return &c
}

// Explain returns a *LayerError when err, the failure of a copy from r,
// says one of r's layers did not match its digest ("did not match", and
// the layer's digest, as copy.Image's digest check and registries word it)
// and hashing that layer again confirms it. Otherwise it returns nil: err
// is about something else. Only a failed copy pays for the hashing.
func (r *Reference) Explain(ctx context.Context, err error) *LayerError {
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "did not match") {
		return nil
	}
	for i, l := range r.image.Layers {
		if !strings.Contains(err.Error(), l.Digest.String()) {
			continue
		}
		if verr := layers.Verify(ctx, l.Spec, l.Digest, l.Size, r.opts...); verr != nil {
			return &LayerError{Index: i, Digest: l.Digest, Paths: l.Paths, Err: verr}
		}
	}
	return nil
}

// Image returns the reference's image description.
func (r *Reference) Image() *description.Image { return r.image }

// Transport returns the nix: transport.
func (r *Reference) Transport() types.ImageTransport { return Transport }

// StringWithinTransport returns the description's path.
func (r *Reference) StringWithinTransport() string { return r.path }

// DockerReference returns nil: a description file is not a registry name.
// The description's own name and tag are only defaults for the CLI.
func (r *Reference) DockerReference() reference.Named { return nil }

// PolicyConfigurationIdentity returns "": see ValidatePolicyConfigurationScope.
func (r *Reference) PolicyConfigurationIdentity() string { return "" }

// PolicyConfigurationNamespaces returns no namespaces.
func (r *Reference) PolicyConfigurationNamespaces() []string { return nil }

// NewImage returns the image; the caller must Close it.
func (r *Reference) NewImage(ctx context.Context, sys *types.SystemContext) (types.ImageCloser, error) {
	src, err := r.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return image.FromSource(ctx, sys, src)
}

// NewImageSource returns a source serving the description's manifest,
// config and layers.
func (r *Reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return newSource(r)
}

// NewImageDestination fails: nix: is read-only.
func (r *Reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return nil, fmt.Errorf("nix:%s: %w", r.path, ErrReadOnly)
}

// DeleteImage fails: nix: is read-only; store paths go with nix-collect-garbage.
func (r *Reference) DeleteImage(ctx context.Context, sys *types.SystemContext) error {
	return fmt.Errorf("nix:%s: %w", r.path, ErrReadOnly)
}
