package imagecopy

import (
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/internal/redact"
)

// ErrOtherRegistry says an additional tag names a repository on another
// registry than the destination's.
var ErrOtherRegistry = errors.New("additional tags go on the destination's registry only (a name without a registry host is on docker.io); " +
	"copy to another registry with a copy of its own, or give nixpush push all the destinations")

// checkAdditionalTags refuses, before anything is copied, additional tags
// that dest cannot take: for a docker:// destination, each is a tag or a
// REGISTRY/REPO:TAG on the destination's registry.
func checkAdditionalTags(dest types.ImageReference, tags []string) error {
	if len(tags) == 0 || dest.Transport().Name() == "docker-archive" {
		return nil
	}
	if !isRegistry(dest) {
		return fmt.Errorf("additional tags: %w, not %s", errNoTags, transports.ImageName(dest))
	}
	for _, t := range tags {
		if _, err := additionalRef(dest.DockerReference(), t); err != nil {
			return err
		}
	}
	return nil
}

// additionalRef reads the additional tag t of the registry destination
// named: a plain tag ("v1.2") in named's repository, or a
// REGISTRY/REPO[:TAG] on named's registry.
func additionalRef(named reference.Named, t string) (reference.NamedTagged, error) {
	if isPlainTag(t) {
		tagged, err := reference.WithTag(reference.TrimNamed(named), t)
		if err != nil {
			return nil, fmt.Errorf("additional tag %q: %w", t, err)
		}
		return tagged, nil
	}
	other, err := docker.ParseReference("//" + t)
	if err != nil {
		return nil, fmt.Errorf("additional tag %q: %w", redact.Reference(t), err)
	}
	on := other.DockerReference()
	if d, domain := reference.Domain(on), reference.Domain(named); d != domain {
		return nil, fmt.Errorf("additional tag %q is on registry %s, not on the destination's registry %s: %w", redact.Reference(t), d, domain, ErrOtherRegistry)
	}
	tagged, ok := on.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("additional tag %q: a tag, not a digest", redact.Reference(t))
	}
	return tagged, nil
}

// isPlainTag says whether an additional tag is a tag ("v1.2") rather than
// a reference ("registry/repo:tag").
func isPlainTag(t string) bool { return !strings.ContainsAny(t, "/:@") }

// addArchiveTags passes additional tags of a docker-archive: destination to
// containers/image, which writes them into the archive.
func addArchiveTags(sys *types.SystemContext, dest types.ImageReference, tags []string) error {
	if dest.Transport().Name() != "docker-archive" {
		return nil
	}
	for _, t := range tags {
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return fmt.Errorf("additional tag %q: %w", t, err)
		}
		tagged, ok := named.(reference.NamedTagged)
		if !ok {
			return fmt.Errorf("additional tag %q: a docker-archive tag needs NAME:TAG", t)
		}
		sys.DockerArchiveAdditionalTags = append(sys.DockerArchiveAdditionalTags, tagged)
	}
	return nil
}
