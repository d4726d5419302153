package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestInProcessCompressed: two images sharing a zstd base layer, each with
// its own gzip app layer, each pushed to two repositories: every unique
// blob is uploaded once under its described digest (the registry checks
// it) and mounted wherever else it goes, and a re-push writes nothing. An
// app store path changed after the build fails its image, when pushed to
// repositories that lack the layer, naming the path, with no manifest
// written and the other image pushed.
func TestInProcessCompressed(t *testing.T) {
	reg := startInProcess(t)
	root := t.TempDir()
	opts := []layers.Option{layers.WithRoot(root)}
	base := fixturePath(t, root, "00000000000000000000000000000zzz-base", map[string]string{"lib": strings.Repeat("base\n", 10000)})
	var builts []*transport.Built
	var apps []layers.Path
	for i := range 2 {
		app := fixturePath(t, root, fmt.Sprintf("%032d-gzapp%d", i+1, i), map[string]string{"app": strings.Repeat(fmt.Sprintf("app %d\n", i), 1000)})
		apps = append(apps, app)
		img := transporttest.Describe(t, fmt.Sprintf("app%d", i), ocispec.ImageConfig{Cmd: []string{"/app"}}, []transporttest.Layer{
			{Paths: []layers.Path{base}, Compression: &layers.Compression{Algorithm: layers.Zstd, Level: 19}},
			{Paths: []layers.Path{app}, Compression: transporttest.Gzip},
		}, opts...)
		b, err := transport.Build(img, opts...)
		if err != nil {
			t.Fatal(err)
		}
		builts = append(builts, b)
	}
	images := func(prefix string) []registry.Image {
		var in []registry.Image
		for i, b := range builts {
			in = append(in, registry.Image{Source: fmt.Sprintf("app%d.json", i), Built: b, Destinations: []string{
				fmt.Sprintf("%s/%s/one/app%d:v1", reg.Host, prefix, i), fmt.Sprintf("%s/%s/two/app%d:v1", reg.Host, prefix, i),
			}})
		}
		return in
	}

	mark := reg.Mark()
	rep, err := registry.Push(context.Background(), images("first"), registry.WithTLSVerify(false))
	if err != nil {
		t.Fatal(err)
	}
	uploads, mounts := uploadsAndMounts(t, reg.Requests(mark))
	want := map[string]bool{}
	for _, b := range builts {
		for _, bl := range b.Blobs() {
			want[bl.Digest.String()] = true
		}
	}
	// The base goes to four repositories, the rest to two each.
	if len(want) != 5 || len(uploads) != len(want) || len(mounts) != len(want) || mounts[builts[0].Image.Layers[0].Digest] != 3 ||
		rep.Totals.Uploaded.Blobs != 5 || rep.Totals.Mounted.Blobs != 3+4 || rep.Totals.Manifests != 4 {
		t.Errorf("uploads %v, mounts %v; totals %+v; want each of %d blobs uploaded once, mounted elsewhere", uploads, mounts, rep.Totals, len(want))
	}
	for d, n := range uploads {
		if !want[d.String()] || n != 1 {
			t.Errorf("%s uploaded %d times", d, n)
		}
	}

	mark = reg.Mark()
	if _, err := registry.Push(context.Background(), images("first"), registry.WithTLSVerify(false)); err != nil {
		t.Fatal(err)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() || q.IsManifestWrite() {
			t.Errorf("re-push wrote: %s", q)
		}
	}

	// app0's store path changes after the build: its layer, compressed
	// on the fly, no longer hashes to the described digest.
	if err := os.WriteFile(filepath.Join(root, apps[0].Path, "app"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark = reg.Mark()
	rep, err = registry.Push(context.Background(), images("fresh"), registry.WithTLSVerify(false), registry.WithKeepGoing(true))
	var le *description.LayerError
	var mm *layers.MismatchError
	if !errors.As(err, &le) || !errors.As(err, &mm) || le.Index != 1 || !strings.Contains(err.Error(), apps[0].Path) || strings.Contains(err.Error(), apps[1].Path) {
		t.Fatalf("got %v, want app0's layers[1] mismatch naming %s", err, apps[0].Path)
	}
	app1 := 0
	for _, q := range reg.Requests(mark) {
		switch {
		case q.IsManifestWrite() && strings.Contains(q.Path, "/app0/"):
			t.Errorf("a manifest of app0 was written: %s", q)
		case q.IsManifestWrite() && strings.Contains(q.Path, "/app1/"):
			app1++
		}
	}
	if app1 != 2 || rep.Totals.Failed != 1 {
		t.Errorf("%d manifests of app1 written, totals %+v; want app1 pushed to both repositories, app0 failed", app1, rep.Totals)
	}
}
