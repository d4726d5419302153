package transport

import (
	"context"
	"errors"
	"fmt"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// ErrReadOnly is returned when asked to write to, or delete, a nix: image.
var ErrReadOnly = errors.New(`"nix:" images can only be read from, not written to or deleted`)

// Reference is a nix: reference: an image description file, or an index
// description file, read, validated and built (Build, BuildIndex) once
// when the reference is made.
type Reference struct {
	path  string
	built *Built      // an image's; nil for an index
	index *BuiltIndex // an index's; nil for an image
}

var _ types.ImageReference = (*Reference)(nil)

// NewReference reads the image or index description at path (an index's
// images too, from the store). opts are passed to layers.Open when a layer
// is streamed, and to layers.ReadStoreFile when an index's image is read
// (tests use layers.WithRoot).
func NewReference(path string, opts ...layers.Option) (*Reference, error) {
	if path == "" {
		return nil, errors.New("nix: reference needs the path of an image description")
	}
	img, idx, err := description.ReadAnyFile(path)
	if err != nil {
		return nil, err
	}
	if idx != nil {
		bi, err := ReadIndex(path, idx, opts...)
		if err != nil {
			return nil, err
		}
		return &Reference{path: path, index: bi}, nil
	}
	return newReference(path, img, opts)
}

// NewReferenceFromImage makes a reference for an image description already
// in memory; name is what StringWithinTransport reports.
func NewReferenceFromImage(name string, img *description.Image, opts ...layers.Option) (*Reference, error) {
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("image description %s: %w", name, err)
	}
	return newReference(name, img, opts)
}

// NewReferenceFromBuilt makes a reference for an image already built;
// name is what StringWithinTransport reports.
func NewReferenceFromBuilt(name string, built *Built) *Reference {
	return &Reference{path: name, built: built}
}

// NewReferenceFromBuiltIndex makes a reference for an index already
// built; name is what StringWithinTransport reports.
func NewReferenceFromBuiltIndex(name string, bi *BuiltIndex) *Reference {
	return &Reference{path: name, index: bi}
}

func newReference(name string, img *description.Image, opts []layers.Option) (*Reference, error) {
	built, err := Build(img, opts...)
	if err != nil {
		return nil, fmt.Errorf("image description %s: %w", name, err)
	}
	return &Reference{path: name, built: built}, nil
}

// Image returns the reference's image description; nil for an index.
func (r *Reference) Image() *description.Image {
	if r.built == nil {
		return nil
	}
	return r.built.Image
}

// Built returns the image as built from its description, once; nil for an
// index (Index).
func (r *Reference) Built() *Built { return r.built }

// Index returns the index as built from its description, once; nil for an
// image (Built).
func (r *Reference) Index() *BuiltIndex { return r.index }

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
// config and layers; for an index, the OCI index and each of its images.
func (r *Reference) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	return &source{ref: r, built: r.built, index: r.index}, nil
}

// NewImageDestination fails: nix: is read-only.
func (r *Reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	return nil, fmt.Errorf("nix:%s: %w", r.path, ErrReadOnly)
}

// DeleteImage fails: nix: is read-only; store paths go with nix-collect-garbage.
func (r *Reference) DeleteImage(ctx context.Context, sys *types.SystemContext) error {
	return fmt.Errorf("nix:%s: %w", r.path, ErrReadOnly)
}
