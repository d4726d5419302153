package registry

import (
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// baseRepos are the repositories the image's blob layer d (a base image's
// layer, pulled by pullImage) was pulled from, when that is on registry:
// a registry mounts a blob from there (POST ?mount=&from=) rather than
// taking an upload of what it already holds.
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
		out = appendRepos(out, reference.TrimNamed(named))
	}
	return out
}
