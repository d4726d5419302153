package push

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
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
	named := dest.DockerReference()
	if dest.Transport().Name() != docker.Transport.Name() || named == nil {
		return fmt.Errorf("additional tags: only docker:// and docker-archive: destinations take them, not %s", transports(dest))
	}
	domain := reference.Domain(named)
	for _, t := range tags {
		if isPlainTag(t) {
			if _, err := reference.WithTag(reference.TrimNamed(named), t); err != nil {
				return fmt.Errorf("additional tag %q: %w", t, err)
			}
			continue
		}
		other, err := docker.ParseReference("//" + t)
		if err != nil {
			return fmt.Errorf("additional tag %q: %w", redact.Reference(t), err)
		}
		if d := reference.Domain(other.DockerReference()); d != domain {
			return fmt.Errorf("additional tag %q is on registry %s, not on the destination's registry %s: %w", redact.Reference(t), d, domain, ErrOtherRegistry)
		}
	}
	return nil
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

// tagMore applies the additional tags of a docker:// destination: a tag in
// the same repository costs one manifest PUT; another repository gets a
// full copy, which mounts blobs from the first destination.
// checkAdditionalTags has checked them.
func (o *options) tagMore(ctx context.Context, policy *signature.PolicyContext, src, dest types.ImageReference, srcSys, destSys *types.SystemContext, res *Result) error {
	if len(o.additionalTags) == 0 || dest.Transport().Name() == "docker-archive" {
		return nil
	}
	named := dest.DockerReference()
	if dest.Transport().Name() != docker.Transport.Name() || named == nil {
		return fmt.Errorf("additional tags: only docker:// and docker-archive: destinations take them, not %s", transports(dest))
	}
	repo := reference.TrimNamed(named)
	for _, t := range o.additionalTags {
		if isPlainTag(t) {
			tagged, err := reference.WithTag(repo, t)
			if err != nil {
				return fmt.Errorf("additional tag %q: %w", t, err)
			}
			if err := putManifest(ctx, src, srcSys, destSys, tagged, res.Manifest); err != nil {
				return fmt.Errorf("additional tag %q: %w", t, err)
			}
			continue
		}
		other, err := docker.ParseReference("//" + t)
		if err != nil {
			return fmt.Errorf("additional tag %q: %w", t, err)
		}
		if err := premount(ctx, src, other, srcSys, destSys, []string{repo.Name()}, o.parallel); err != nil {
			return fmt.Errorf("additional tag %q: %w", t, err)
		}
		r, err := o.copyWithRetry(ctx, policy, src, other, srcSys, destSys)
		if err != nil {
			return fmt.Errorf("additional tag %q: %w", t, err)
		}
		if r.Digest != res.Digest {
			return fmt.Errorf("additional tag %q: got manifest %s, want %s", t, r.Digest, res.Digest)
		}
	}
	return nil
}

// putManifest writes manifest under tagged, whose repository already holds
// every blob the manifest names.
func putManifest(ctx context.Context, src types.ImageReference, srcSys, destSys *types.SystemContext, tagged reference.NamedTagged, manifest []byte) error {
	ref, err := docker.NewReference(tagged)
	if err != nil {
		return err
	}
	d, err := ref.NewImageDestination(ctx, destSys)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.PutManifest(ctx, manifest, nil); err != nil {
		return err
	}
	s, err := src.NewImageSource(ctx, srcSys)
	if err != nil {
		return err
	}
	defer s.Close()
	return d.Commit(ctx, image.UnparsedInstance(s, nil))
}
