package pull

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRegistry serves one image in process, for faults a real registry
// cannot make: a blob whose bytes are not its digest's. The real pulls are
// tested in nix/ (base_e2e_test.go) against docker-registry and
// distribution.
type fakeRegistry struct {
	manifest, config []byte
	layer            []byte
	corrupt          bool // serve the layer with one byte changed
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(p, "/v2/base/manifests/"):
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(f.manifest).String())
		w.Write(f.manifest)
	case p == "/v2/base/blobs/"+digest.FromBytes(f.config).String():
		w.Write(f.config)
	case p == "/v2/base/blobs/"+digest.FromBytes(f.layer).String():
		b := append([]byte(nil), f.layer...)
		if f.corrupt {
			b[0] ^= 1
		}
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

func newFake(t *testing.T, arch string) (*fakeRegistry, string) {
	t.Helper()
	f := &fakeRegistry{layer: []byte("\x1f\x8b not really gzip, but bytes are bytes")}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("tar")}}})
	f.config = cfg
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(f.layer), Size: int64(len(f.layer))}},
	})
	f.manifest = m
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://") + "/base@" + digest.FromBytes(m).String()
}

// TestFetchDeterministic: two fetches write the same bytes, so the same
// NAR hash, and lock computes it from what Fetch writes.
func TestFetchDeterministic(t *testing.T) {
	_, ref := newFake(t, "amd64")
	ctx := context.Background()
	opts := []Option{WithTLSVerify(false), WithPlatform("linux", "amd64", "")}
	var hashes []string
	for range 2 {
		dir := filepath.Join(t.TempDir(), "out")
		if _, err := Fetch(ctx, ref, dir, opts...); err != nil {
			t.Fatal(err)
		}
		h, err := NARHash(dir)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
		entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
		if len(entries) != 3 {
			t.Errorf("%d blobs, want manifest, config and layer", len(entries))
		}
	}
	l, err := MakeLock(ctx, ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if hashes[0] != hashes[1] || l.Sha256 != hashes[0] {
		t.Errorf("NAR hashes %v, lock %s: want one value", hashes, l.Sha256)
	}
}

// TestFetchFaults: a blob served with other bytes, another platform and a
// reference without digest each fail naming the reference.
func TestFetchFaults(t *testing.T) {
	ctx := context.Background()
	f, ref := newFake(t, "amd64")
	f.corrupt = true
	_, err := Fetch(ctx, ref, filepath.Join(t.TempDir(), "out"), WithTLSVerify(false), WithPlatform("linux", "amd64", ""))
	if err == nil || !strings.Contains(err.Error(), "pulling "+ref) || !strings.Contains(err.Error(), digest.FromBytes(f.layer).String()+": the registry served bytes that hash to") {
		t.Errorf("corrupt blob: %v", err)
	}
	_, ref = newFake(t, "arm64")
	_, err = Fetch(ctx, ref, filepath.Join(t.TempDir(), "out"), WithTLSVerify(false), WithPlatform("linux", "amd64", ""))
	if !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), "the image is linux/arm64, not linux/amd64") {
		t.Errorf("other platform: %v", err)
	}
	if _, err := Fetch(ctx, "registry.example.com/base:1", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no digest") {
		t.Errorf("tag only: %v", err)
	}
}
