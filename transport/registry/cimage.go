package registry

// This file holds everything nixpush relies on that containers/image does
// not offer as public API: values copied from its internal packages,
// behaviour read off its results, and reflection into its unexported
// types. cimage_test.go fails when an upgrade changes any of it.

import (
	"errors"
	"reflect"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"
	civersion "go.podman.io/image/v5/version"
)

// defaultUserAgent is containers/image's own User-Agent
// (internal/useragent.DefaultUserAgent), which nixpush's follows: setting
// SystemContext.DockerRegistryUserAgent replaces it.
var defaultUserAgent = "containers/" + civersion.Version + " (github.com/containers/image)"

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
// takes a type from an internal package (blobinfocache.DigestCompressorData).
// The in-memory cache has the method, so it is called through reflection.
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

// reusedByMount says whether TryReusingBlob, given a cache from MountCandidates,
// mounted the blob it returned info for, rather than finding it in the
// destination repository already.
//
// containers/image tells the two apart only in the info it returns: a blob
// found in place comes back as is, a mounted one with the compression
// operation of the candidate MountCandidates recorded (decompress for an
// uncompressed blob, compress for a compressed one).
func reusedByMount(info types.BlobInfo) bool {
	return info.CompressionOperation != types.PreserveOriginal
}

// httpStatus finds an HTTP status in err's tree: an error struct with an
// int field StatusCode. A 4xx answer whose body is not a registry error (a
// HEAD's has none) comes from containers/image in a type that is
// unexported (unexpectedHTTPResponseError), but whose StatusCode field is
// not.
func httpStatus(err error) (int, bool) {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("StatusCode"); f.IsValid() && f.Kind() == reflect.Int && f.Int() >= 100 {
				return int(f.Int()), true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if code, ok := httpStatus(e); ok {
					return code, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}
