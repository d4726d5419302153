package push

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"
	"golang.org/x/sync/errgroup"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/transport"
)

// premount makes each blob of src that dest lacks but one of repos has
// available in dest by a cross-repository mount, before the copy proper.
//
// containers/image's docker destination first asks the destination
// repository for a blob (HEAD), then tries the locations its blob-info
// cache remembers, mounting from the first that has it. A fresh machine
// remembers nothing, so here an in-memory cache is told that every blob may
// be in each of repos; the destination checks each candidate (HEAD) before
// mounting (POST ?mount=&from=), so a wrong guess costs one request.
func premount(ctx context.Context, src, dest types.ImageReference, srcSys, destSys *types.SystemContext, repos []string, parallel uint) error {
	named := dest.DockerReference()
	if dest.Transport().Name() != docker.Transport.Name() || named == nil {
		return fmt.Errorf("mount-from: only docker:// destinations mount blobs, not %s", transports(dest))
	}
	domain := reference.Domain(named)
	img, err := src.NewImage(ctx, srcSys)
	if err != nil {
		return fmt.Errorf("mount-from: reading %s: %w", transports(src), err)
	}
	defer img.Close()
	blobs := append(img.LayerInfos(), img.ConfigInfo())

	var candidates []reference.Named
	for _, r := range repos {
		repo, err := mountRepo(domain, r)
		if err != nil {
			return err
		}
		candidates = append(candidates, repo)
	}
	cache, err := MountCandidates(candidates, blobs)
	if err != nil {
		return fmt.Errorf("mount-from: %w", err)
	}

	// A blob found with another size than src gives it fails here already.
	checked, err := checkStored(src, dest)
	if err != nil {
		return err
	}
	d, err := checked.NewImageDestination(ctx, destSys)
	if err != nil {
		return fmt.Errorf("mount-from: %s: %w", transports(dest), err)
	}
	defer d.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(int(parallel))
	for _, b := range blobs {
		g.Go(func() error {
			if _, _, err := d.TryReusingBlob(gctx, b, cache, false); err != nil {
				return fmt.Errorf("mount-from: blob %s: %w", b.Digest, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// MountCandidates returns an in-memory blob-info cache that tells
// containers/image's docker destination that each of blobs may be in each
// of repos (all on the destination's registry). TryReusingBlob with this
// cache checks the destination repository (HEAD), then each candidate
// (HEAD), and mounts from the first that has the blob (POST
// ?mount=DIGEST&from=REPO), never mount without from.
func MountCandidates(repos []reference.Named, blobs []types.BlobInfo) (types.BlobInfoCache, error) {
	cache := memory.New()
	for _, repo := range repos {
		scope := types.BICTransportScope{Opaque: reference.Domain(repo)}
		for _, b := range blobs {
			cache.RecordKnownLocation(docker.Transport, scope, b.Digest, types.BICLocationReference{Opaque: reference.TrimNamed(repo).Name()})
		}
	}
	for _, b := range blobs {
		if !recordCompressor(cache, b.Digest, compressorName(b.MediaType)) {
			return nil, errors.New("this build's containers/image blob-info cache cannot be seeded; please report it")
		}
	}
	return cache, nil
}

// recordCompressor records in cache which compression the blob d has.
//
// containers/image ignores a cached location unless it also knows the
// blob's compression, and it offers no public way to record it: the method
// takes a type from an internal package. The in-memory cache has the
// method, so it is called through reflection; TestSharedLayers fails if a
// containers/image upgrade changes it.
func recordCompressor(cache types.BlobInfoCache, d digest.Digest, name string) bool {
	m := reflect.ValueOf(cache).MethodByName("RecordDigestCompressorData")
	if !m.IsValid() || m.Type().NumIn() != 2 || m.Type().In(1).Kind() != reflect.Struct {
		return false
	}
	data := reflect.New(m.Type().In(1)).Elem()
	for field, value := range map[string]string{"BaseVariantCompressor": name, "SpecificVariantCompressor": "unknown"} {
		f := data.FieldByName(field)
		if !f.IsValid() || f.Kind() != reflect.String {
			return false
		}
		f.SetString(value)
	}
	m.Call([]reflect.Value{reflect.ValueOf(d), data})
	return true
}

// compressorName is containers/image's name of the compression of a blob
// with this media type.
func compressorName(mediaType string) string {
	switch {
	case strings.HasSuffix(mediaType, "+gzip"), strings.HasSuffix(mediaType, ".tar.gzip"), mediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return "gzip"
	case strings.HasSuffix(mediaType, "+zstd"):
		return "zstd"
	default:
		return "uncompressed"
	}
}

// mountRepo reads a --mount-from repository, which defaults to the
// destination's registry.
func mountRepo(domain, r string) (reference.Named, error) {
	first, _, _ := strings.Cut(r, "/")
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		r = path.Join(domain, r)
	}
	named, err := reference.ParseNormalizedNamed(r)
	if err != nil {
		return nil, fmt.Errorf("mount-from %q: %w", r, err)
	}
	if reference.Domain(named) != domain {
		return nil, fmt.Errorf("mount-from %q: not on the destination's registry %s; registries mount only their own blobs", r, domain)
	}
	return reference.TrimNamed(named), nil
}

// labeler names the blobs of src: for a nix: image, each layer by its
// position and first store path.
func labeler(src types.ImageReference) blobNames {
	n := blobNames{byDigest: map[digest.Digest]string{}}
	ref, ok := src.(*transport.Reference)
	if !ok {
		return n
	}
	img, built := ref.Image(), ref.Built()
	n.byDigest[built.ConfigDigest] = "config"
	n.total = int64(len(built.Config))
	for i, l := range img.Layers {
		name := "?"
		if len(l.Paths) > 0 {
			name = strings.TrimPrefix(l.Paths[0].Path, "/nix/store/")
			if _, after, ok := strings.Cut(name, "-"); ok {
				name = after
			}
			if len(l.Paths) > 1 {
				name += fmt.Sprintf(" +%d", len(l.Paths)-1)
			}
		}
		n.byDigest[l.Digest] = fmt.Sprintf("layer %d/%d %s", i+1, len(img.Layers), name)
		n.total += l.Size
	}
	return n
}

// Mounted says whether TryReusingBlob, given a cache from MountCandidates,
// mounted the blob it returned info for, rather than finding it in the
// destination repository already.
//
// containers/image tells the two apart only in the info it returns: a blob
// found in place comes back as is, a mounted one with the compression
// operation of the candidate MountCandidates recorded (decompress for an
// uncompressed blob, compress for a compressed one). TestSharedLayers and
// the release tests, which count mounts and skips, fail if that changes.
func Mounted(info types.BlobInfo) bool {
	return info.CompressionOperation != types.PreserveOriginal
}
