package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/internal/testenv"
)

// The tests here fail when a containers/image upgrade changes what
// cimage.go relies on.

// dest opens a containers/image docker destination for REPO:v1 on host,
// plain HTTP, with containers/image's own User-Agent.
func dest(t *testing.T, host, repo string) types.ImageDestination {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	ref, err := docker.ParseReference("//" + host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ref.NewImageDestination(context.Background(), &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestMountCandidates: a blob-info cache from MountCandidates makes
// TryReusingBlob mount from the repository it names (so recordCompressor
// still seeds the cache), and reusedByMount tells that mount from a blob
// found in place; for uncompressed, zstd and gzip layers alike
// (compressorName gives containers/image a compression it accepts for
// each).
func TestMountCandidates(t *testing.T) {
	reg := testenv.StartInProcessRegistry(t)
	ctx := context.Background()
	for _, mediaType := range []string{ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerGzip} {
		t.Run(mediaType, func(t *testing.T) {
			data := "blob bytes of " + mediaType
			info := types.BlobInfo{Digest: digest.FromString(data), Size: int64(len(data)), MediaType: mediaType}
			if _, err := dest(t, reg.Host, "home").PutBlob(ctx, strings.NewReader(data), info, memory.New(), false); err != nil {
				t.Fatal(err)
			}
			home, err := reference.ParseNormalizedNamed(reg.Host + "/home")
			if err != nil {
				t.Fatal(err)
			}
			cache, err := MountCandidates([]reference.Named{home}, []types.BlobInfo{info})
			if err != nil {
				t.Fatalf("MountCandidates: %v; containers/image changed its blob-info cache (RecordDigestCompressorData)", err)
			}
			d := dest(t, reg.Host, "other")
			mark := reg.Mark()
			ok, got, err := d.TryReusingBlob(ctx, info, cache, false)
			if err != nil || !ok || !reusedByMount(got) || got.Size != info.Size {
				t.Fatalf("TryReusingBlob from home: %v, %+v, %v; want a mount", ok, got, err)
			}
			mounted := false
			for _, q := range reg.Requests(mark) {
				mounted = mounted || (q.Method == http.MethodPost && strings.Contains(q.Path, "mount=") && strings.Contains(q.Path, info.Digest.Encoded()) && strings.Contains(q.Path, "from=home") && q.Status == http.StatusCreated)
			}
			if !mounted {
				t.Errorf("no mount from home; requests: %v", reg.Requests(mark))
			}
			ok, got, err = d.TryReusingBlob(ctx, info, cache, false)
			if err != nil || !ok || reusedByMount(got) {
				t.Errorf("TryReusingBlob of a blob in place: %v, %+v, %v; want it found, not mounted", ok, got, err)
			}
		})
	}
}

// TestHTTPStatus: a 4xx answer without a registry error body comes back
// from containers/image in its unexported error type, whose StatusCode
// httpStatus reads; Permanent sorts it.
func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusForbidden, ErrDenied},
		{http.StatusTeapot, nil}, // another 4xx: not nil, but no sentinel
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return
			}
			w.WriteHeader(tc.status)
		}))
		u, _ := url.Parse(srv.URL)
		_, _, err := dest(t, u.Host, "app").TryReusingBlob(context.Background(), types.BlobInfo{Digest: digest.FromString("x"), Size: 1}, memory.New(), false)
		srv.Close()
		if code, ok := httpStatus(err); !ok || code != tc.status {
			t.Errorf("HEAD answered %d: httpStatus(%v) = %d, %v; containers/image changed how it reports a body-less answer", tc.status, err, code, ok)
		}
		reason := Permanent(err)
		if reason == nil || (tc.want != nil && !errors.Is(reason, tc.want)) {
			t.Errorf("HEAD answered %d: Permanent = %v, want %v (fail at once)", tc.status, reason, tc.want)
		}
	}
}

// TestDefaultUserAgent: defaultUserAgent is what containers/image sends
// when SystemContext.DockerRegistryUserAgent is empty.
func TestDefaultUserAgent(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		if r.URL.Path != "/v2/" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	dest(t, u.Host, "app").TryReusingBlob(context.Background(), types.BlobInfo{Digest: digest.FromString("x"), Size: 1}, memory.New(), false) //nolint:errcheck // only the requests matter
	mu.Lock()
	defer mu.Unlock()
	if len(agents) == 0 {
		t.Fatal("no request made")
	}
	for _, a := range agents {
		if a != defaultUserAgent {
			t.Errorf("containers/image sent User-Agent %q, defaultUserAgent is %q", a, defaultUserAgent)
		}
	}
}
