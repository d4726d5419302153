package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// fakeFamily is n images sharing a base layer, each with its own app
// layer, from a fixture store below a temporary root (no Nix needed); opts
// open that store.
func fakeFamily(t *testing.T, n int) (imgs []*transport.Built, opts []layers.Option) {
	t.Helper()
	root := t.TempDir()
	base := fixturePath(t, root, "00000000000000000000000000000bbb-base", map[string]string{"lib": strings.Repeat("base\n", 1000)})
	for i := range n {
		app := fixturePath(t, root, fmt.Sprintf("%032d-app%d", i+1, i), map[string]string{"app": fmt.Sprintf("app %d\n", i)})
		img := transporttest.Describe(t, fmt.Sprintf("app%d", i), ocispec.ImageConfig{Cmd: []string{"/app"}},
			[]transporttest.Layer{{Paths: []layers.Path{base}}, {Paths: []layers.Path{app}}}, layers.WithRoot(root))
		b, err := transport.Build(img, layers.WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
	}
	return imgs, []layers.Option{layers.WithRoot(root)}
}

// uploadsAndMounts counts completed uploads and mounts by digest.
func uploadsAndMounts(t *testing.T, reqs []testenv.Request) (uploads, mounts map[digest.Digest]int) {
	t.Helper()
	uploads, mounts = map[digest.Digest]int{}, map[digest.Digest]int{}
	for _, q := range reqs {
		u, err := url.Parse(q.Path)
		if err != nil {
			t.Fatal(err)
		}
		switch v := u.Query(); {
		case q.Method == http.MethodPut && v.Get("digest") != "" && q.Status == http.StatusCreated:
			uploads[digest.Digest(v.Get("digest"))]++
		case q.Method == http.MethodPost && v.Get("mount") != "" && q.Status == http.StatusCreated:
			mounts[digest.Digest(v.Get("mount"))]++
		}
	}
	return uploads, mounts
}

// TestInProcessSharedLayers: images sharing a layer, each to two
// repositories: every unique blob is uploaded once and mounted into the
// other repository; a second image's push with MountFrom mounts the shared
// layer from where the first went.
func TestInProcessSharedLayers(t *testing.T) {
	reg := startInProcess(t)
	imgs, _ := fakeFamily(t, 3)
	var in []registry.Image
	for i, b := range imgs[:2] {
		in = append(in, registry.Image{Source: fmt.Sprintf("app%d.json", i), Built: b, Destinations: []string{
			fmt.Sprintf("%s/one/app:v%d", reg.Host, i), fmt.Sprintf("%s/two/app:v%d", reg.Host, i),
		}})
	}
	mark := reg.Mark()
	rep, err := registry.Push(context.Background(), in, registry.WithTLSVerify(false))
	if err != nil {
		t.Fatal(err)
	}
	uploads, mounts := uploadsAndMounts(t, reg.Requests(mark))
	unique := 1 + 2*2 // the base, then an app layer and a config per image
	if len(uploads) != unique || len(mounts) != unique {
		t.Errorf("%d blobs uploaded and %d mounted, want %d each; totals %+v", len(uploads), len(mounts), unique, rep.Totals)
	}
	for d, n := range uploads {
		if n != 1 {
			t.Errorf("%s uploaded %d times", d, n)
		}
	}
	if rep.Totals.Manifests != 4 || rep.Totals.Uploaded.Blobs != unique || rep.Totals.Mounted.Blobs != unique {
		t.Errorf("totals %+v", rep.Totals)
	}

	mark = reg.Mark()
	rep, err = registry.Push(context.Background(), []registry.Image{{
		Source: "app2.json", Built: imgs[2], Destinations: []string{reg.Host + "/three/app:v2"}, MountFrom: []string{"one/app"},
	}}, registry.WithTLSVerify(false))
	if err != nil {
		t.Fatal(err)
	}
	uploads, mounts = uploadsAndMounts(t, reg.Requests(mark))
	if base := imgs[2].Image.Layers[0].Digest; mounts[base] != 1 || uploads[base] != 0 || len(uploads) != 2 {
		t.Errorf("MountFrom: uploads %v, mounts %v; want the base mounted, its own layer and config uploaded", uploads, mounts)
	}
}

// TestInProcessIntegrity: a layer whose bytes are not its description's
// fails the image with a *description.LayerError before the registry
// takes it, and a description claiming another size for a blob the
// registry holds fails with a *transport.SizeError; neither writes a
// manifest, and neither is retried.
func TestInProcessIntegrity(t *testing.T) {
	reg := startInProcess(t)
	family, opts := fakeFamily(t, 1)
	good := family[0]
	if _, err := registry.Push(context.Background(), []registry.Image{{Source: "good.json", Built: good, Destinations: []string{reg.Host + "/good/app:v1"}}},
		registry.WithTLSVerify(false)); err != nil {
		t.Fatal(err)
	}
	edited := func(t *testing.T, change func(l *description.Layer)) *transport.Built {
		img := *good.Image
		img.Layers = append(img.Layers[:0:0], img.Layers...)
		change(&img.Layers[1])
		b, err := transport.Build(&img, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		built  *transport.Built
		repo   string
		wantAs func(error) bool
	}{
		{"digest edited", edited(t, func(l *description.Layer) {
			l.Digest = digest.Digest("sha256:" + strings.Repeat("0", 64))
			l.DiffID = l.Digest
		}), "fresh/edited", func(err error) bool { var le *description.LayerError; return errors.As(err, &le) && le.Index == 1 }},
		{"size edited, blob in the repository", edited(t, func(l *description.Layer) { l.Size = 8 << 30 }), "good/app",
			func(err error) bool {
				var se *transport.SizeError
				return errors.As(err, &se) && se.Index == 1 && se.Described == 8<<30
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var progress strings.Builder
			mark := reg.Mark()
			_, err := registry.Push(context.Background(), []registry.Image{{Source: "bad.json", Built: tc.built, Destinations: []string{reg.Host + "/" + tc.repo + ":bad"}}},
				registry.WithTLSVerify(false), registry.WithRetry(3, 10*time.Millisecond), registry.WithProgress(&progress, false, time.Hour))
			if !tc.wantAs(err) {
				t.Fatalf("err = %v", err)
			}
			t.Logf("error: %v", err)
			if strings.Contains(progress.String(), "retrying") {
				t.Errorf("retried:\n%s", progress.String())
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() {
					t.Errorf("a manifest was written: %s", q)
				}
				if q.IsBlobWrite() && strings.Contains(q.Path, tc.built.Image.Layers[1].Digest.Encoded()) {
					t.Errorf("the bad layer was stored: %s", q)
				}
			}
		})
	}
}
