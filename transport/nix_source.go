package transport

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"
)

// source serves a nix: image. The manifest and config were built once,
// with the reference; a layer's blob (its tar, compressed when the
// description says so) is produced only when GetBlob is called, which
// containers/image does only after the destination said it lacks the blob.
type source struct {
	ref   *Reference
	built *Built      // an image's
	index *BuiltIndex // or an index's
}

var _ types.ImageSource = (*source)(nil)

func (s *source) Reference() types.ImageReference { return s.ref }

func (s *source) Close() error { return nil }

// GetManifest returns the OCI image manifest, or for an index the OCI
// image index (instanceDigest nil) or the manifest of one of its images.
// A nix: image is a single image, not a list, so instanceDigest must be
// nil for it.
func (s *source) GetManifest(ctx context.Context, instanceDigest *digest.Digest) ([]byte, string, error) {
	if s.index != nil {
		if instanceDigest == nil {
			return s.index.Manifest, ocispec.MediaTypeImageIndex, nil
		}
		if b := s.index.Image(*instanceDigest); b != nil {
			return b.Manifest, ocispec.MediaTypeImageManifest, nil
		}
		return nil, "", fmt.Errorf("nix:%s: manifest %s is not in the index", s.ref.path, instanceDigest)
	}
	if instanceDigest != nil {
		return nil, "", fmt.Errorf("nix:%s: manifest %s: a nix: image has no manifest list", s.ref.path, instanceDigest)
	}
	return s.built.Manifest, ocispec.MediaTypeImageManifest, nil
}

// HasThreadSafeGetBlob reports that layers may be streamed concurrently:
// each GetBlob opens its own pipe.
func (s *source) HasThreadSafeGetBlob() bool { return true }

// GetBlob returns the config, or streams a layer's blob from the store
// (Built.Open): hashed as it goes, so a layer that does not match its
// description ends in a *description.LayerError, which copy.Image passes on
// wrapped, before the destination commits the blob. copy.Image hashes what
// it reads too: a layer copied to oci:, dir: or an archive is hashed twice,
// the price of a typed error naming the store paths that changed (pushes to
// registries go through transport/registry, which hashes once).
func (s *source) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	open := s.built.Open
	if s.index != nil {
		open = s.index.Open
	}
	rc, size, err := open(ctx, info.Digest)
	if err != nil {
		return nil, -1, fmt.Errorf("nix:%s: %w", s.ref.path, err)
	}
	return rc, size, nil
}

// GetSignatures returns no signatures: a description carries none.
func (s *source) GetSignatures(ctx context.Context, instanceDigest *digest.Digest) ([][]byte, error) {
	return nil, nil
}

// LayerInfosForCopy returns nil: the manifest's layers are copied as they
// are, compressed ones included (their media types say how).
func (s *source) LayerInfosForCopy(ctx context.Context, instanceDigest *digest.Digest) ([]types.BlobInfo, error) {
	return nil, nil
}
