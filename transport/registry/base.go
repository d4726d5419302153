package registry

import (
	"context"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// baseRepos are the repositories the image's blob layer d (a base image's
// layer, pulled by pullImage) was pulled from, when that is on registry:
// a registry mounts a blob from there (POST ?mount=&from=) rather than
// taking an upload of what it already holds.
//
// Only when the layer's file is in the store, with its size: a mount
// never reads the file, and a description must not make nixpush copy a
// blob that the user's credentials reach but the store does not hold.
func (img *image) baseRepos(d digest.Digest, registry string) []reference.Named {
	var out []reference.Named
	for _, l := range img.built.Image.Layers {
		if l.Digest != d || l.Blob == nil || l.Blob.Repository == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(l.Blob.Repository)
		if err != nil || reference.Domain(named) != registry {
			continue
		}
		// Opening a blob layer's stream opens its file (beneath the
		// store path, no symlink) and checks its size; nothing is read.
		rc, _, err := img.built.Stream(context.Background(), d)
		if err != nil {
			return nil
		}
		rc.Close()
		out = appendRepos(out, reference.TrimNamed(named))
	}
	return out
}
