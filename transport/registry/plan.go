package registry

import (
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport"
)

// Plan is a plan file: the images of a release and where each goes. Nix
// writes it with nix/plan.nix:
//
//	{"images": [{"image": "/nix/store/…-image-app.json",
//	             "destinations": ["docker://registry.example.com/app:v1", …]}, …]}
type Plan struct {
	Images []Image `json:"images"`
}

// Image is one image to push, and where.
type Image struct {
	// Source is the path of the image description (nix: is optional).
	// With Built set, it only names the image in progress, errors and the
	// report.
	Source string `json:"image"`
	// Destinations are registry references with a tag:
	// "docker://REGISTRY/REPO:TAG" (docker:// is optional).
	Destinations []string `json:"destinations"`
	// MountFrom names repositories that may already hold the image's
	// blobs: "REGISTRY/REPO" on one of the destinations' registries, or
	// "REPO" on each of them. A blob a destination repository lacks is
	// looked up there (HEAD) and mounted (POST ?mount=&from=) when found,
	// not uploaded. Not read from plan files.
	MountFrom []string `json:"-"`
	// Built is the image already read and built (transport.Reference's
	// Built), with the layer options it was made with. Not read from plan
	// files.
	Built *transport.Built `json:"-"`
	// Index is an index already read and built (transport.Reference's
	// Index): its images are pushed, each manifest by digest, then the
	// index under the destinations' tags. Not read from plan files, whose
	// Source may name an index description as well as an image's.
	Index *transport.BuiltIndex `json:"-"`
}

// MaxPlanSize is the largest plan file read, in bytes: a plan names image
// descriptions and destinations, a few hundred bytes each.
const MaxPlanSize = 64 << 20

// ReadPlan reads a plan file, a regular file (or a symbolic link to one) of
// at most MaxPlanSize bytes.
func ReadPlan(path string) (*Plan, error) {
	b, err := jsonfield.ReadFile(path, MaxPlanSize)
	if err != nil {
		return nil, fmt.Errorf("reading plan: %w", err)
	}
	p, err := ParsePlan(b)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, nil
}

// ParsePlan decodes a plan; unknown fields are errors, so a typo does not
// silently drop destinations. Errors name the field at fault
// ("images[2].destinations[0]: …").
func ParsePlan(b []byte) (*Plan, error) {
	var p Plan
	if err := jsonfield.Strict(b, &p); err != nil {
		return nil, err
	}
	for i, img := range p.Images {
		if img.Source == "" {
			return nil, fmt.Errorf("images[%d].image: missing", i)
		}
		if len(img.Destinations) == 0 {
			return nil, fmt.Errorf("images[%d].destinations (%s): none", i, img.Source)
		}
		for j, d := range img.Destinations {
			if _, err := ParseDestination(d); err != nil {
				return nil, fmt.Errorf("images[%d].destinations[%d] (%s): %w", i, j, img.Source, err)
			}
		}
	}
	return &p, nil
}

// ErrNoRegistry says a destination does not name its registry host.
var ErrNoRegistry = errors.New("no registry host: write REGISTRY/REPO:TAG, docker.io/REPO:TAG for Docker Hub")

// ParseDestination reads "docker://REGISTRY/REPO:TAG" or "REGISTRY/REPO:TAG".
// The registry and the tag are required: a release names where it goes,
// and a name without a registry ("app:v1") is not silently Docker Hub's.
// Errors quote s without any user information ("user:pass@") it holds.
func ParseDestination(s string) (reference.NamedTagged, error) {
	t := strings.TrimPrefix(s, "docker://")
	if t == "" {
		return nil, errors.New("destination: empty")
	}
	shown := redact.Reference(s)
	named, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", shown, err)
	}
	if !namesRegistry(t, named) {
		return nil, fmt.Errorf("destination %q: %w", shown, ErrNoRegistry)
	}
	if _, ok := named.(reference.Canonical); ok {
		return nil, fmt.Errorf("destination %q: a destination is a tag, not a digest", shown)
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("destination %q: no tag (REGISTRY/REPO:TAG)", shown)
	}
	return tagged, nil
}

// ParseSource reads "docker://REGISTRY/REPO:TAG" or "…@DIGEST", a
// reference to read from. Like a destination, it must name its registry
// host (ErrNoRegistry): credentials go only to a registry written out.
func ParseSource(s string) (reference.Named, error) {
	t := strings.TrimPrefix(s, "docker://")
	shown := redact.Reference(s)
	named, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", shown, err)
	}
	if !namesRegistry(t, named) {
		return nil, fmt.Errorf("reference %q: %w", shown, ErrNoRegistry)
	}
	return reference.TagNameOnly(named), nil
}

// namesRegistry says whether written, which parses as named, begins with
// named's registry host. Parsing puts a name that has none ("app:v1",
// "team/app:v1") on docker.io; index.docker.io is read as docker.io.
func namesRegistry(written string, named reference.Named) bool {
	first, _, ok := strings.Cut(written, "/")
	if !ok {
		return false
	}
	domain := reference.Domain(named)
	return first == domain || (domain == "docker.io" && first == "index.docker.io")
}
