package registry_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// family is n images sharing two base layers, each with its own app
// layer: the shape of a release of many services.
type family struct {
	paths  []string // image descriptions
	builts []*transport.Built
	apps   []layers.Path
}

func newFamily(t *testing.T, n int, bigApp int) *family {
	t.Helper()
	base1 := transporttest.AddStorePath(t, "release-base-libc", map[string]transporttest.File{
		"lib/libc.so": {Data: strings.Repeat("libc bytes\n", 30000)},
	})
	base2 := transporttest.AddStorePath(t, "release-base-busybox", map[string]transporttest.File{
		"bin/busybox": {Data: strings.Repeat("busybox\n", 20000), Exec: true},
		"bin/sh":      {Link: "busybox"},
	})
	f := &family{}
	for i := range n {
		app := transporttest.AddStorePath(t, fmt.Sprintf("release-app-%d", i), map[string]transporttest.File{
			"bin/app": {Data: fmt.Sprintf("#!/bin/sh\necho app %d\n", i) + strings.Repeat("x", bigApp), Exec: true},
		})
		f.apps = append(f.apps, app)
		img := transporttest.Describe(t, fmt.Sprintf("app%d", i), ocispec.ImageConfig{
			Entrypoint: []string{app.Path + "/bin/app"},
		}, []transporttest.Layer{
			{Paths: []layers.Path{base1}},
			{Paths: []layers.Path{base2}},
			{Paths: []layers.Path{app}},
		})
		built, err := transport.Build(img)
		if err != nil {
			t.Fatal(err)
		}
		f.paths = append(f.paths, transporttest.Write(t, img))
		f.builts = append(f.builts, built)
	}
	return f
}

// stateless is the registry option of a fresh CI runner (an empty HOME)
// against a plain-HTTP test registry. The engine keeps no blob-info cache
// of its own, so none is needed.
func stateless(t *testing.T) registry.Option {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	return registry.WithTLSVerify(false)
}

// blobOps counts a registry's blob requests since mark, by kind and digest.
type blobOps struct {
	heads     int
	uploads   map[digest.Digest]int // completed uploads (PUT …?digest=, 201)
	mounts    map[digest.Digest]int // POST ?mount=&from= answered 201
	starts    int                   // POST without mount: upload sessions
	badMounts int                   // POST ?mount= without from
	manifests int
	writes    int // every blob write
}

func countOps(t *testing.T, reqs []testenv.Request) blobOps {
	t.Helper()
	ops := blobOps{uploads: map[digest.Digest]int{}, mounts: map[digest.Digest]int{}}
	for _, q := range reqs {
		u, err := url.Parse(q.Path)
		if err != nil {
			t.Fatalf("request path %q: %v", q.Path, err)
		}
		v := u.Query()
		switch {
		case q.IsManifestWrite():
			ops.manifests++
		case q.Method == http.MethodHead && strings.Contains(u.Path, "/blobs/"):
			ops.heads++
		case q.Method == http.MethodPut && strings.Contains(u.Path, "/blobs/uploads/") && q.Status == http.StatusCreated:
			ops.uploads[digest.Digest(v.Get("digest"))]++
		case q.Method == http.MethodPost && v.Get("mount") != "":
			if v.Get("from") == "" {
				ops.badMounts++
			}
			if q.Status == http.StatusCreated {
				ops.mounts[digest.Digest(v.Get("mount"))]++
			}
		case q.Method == http.MethodPost && strings.Contains(u.Path, "/blobs/uploads/"):
			ops.starts++
		}
		if q.IsBlobWrite() {
			ops.writes++
		}
	}
	return ops
}

// pullAll copies ref from the registry into an OCI layout with skopeo,
// which reads every blob the manifest names and checks its digest: the
// image is complete and intact.
func pullAll(t *testing.T, ref string) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	df := dir + "/digest"
	testenv.Skopeo(t, "copy", "--src-tls-verify=false", "--preserve-digests", "--digestfile", df, "docker://"+ref, "oci:"+dir+"/layout:x")
	b, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(strings.TrimSpace(string(b)))
}

func ociConfig() ocispec.ImageConfig { return ocispec.ImageConfig{Cmd: []string{"/bin/true"}} }
