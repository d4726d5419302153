package registry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// blobLayerImage describes an image of a blob layer (a pulled base's
// layer, pulled from repository) and a layer of store paths, in a fixture
// store under root; desc is its description file, opts the push options.
func blobLayerImage(t *testing.T, repository string) (root, base, file string, data []byte, desc string, opts []registry.Option) {
	t.Helper()
	root = t.TempDir()
	base = layers.StoreDir + "/00000000000000000000000000000bas-image-base"
	data = []byte(strings.Repeat("a pulled gzip layer, as served\n", 5000))
	d := digest.FromBytes(data)
	file = "blobs/sha256/" + d.Encoded()
	if err := os.MkdirAll(filepath.Join(root, base, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, base, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	app := fixturePath(t, root, "00000000000000000000000000000app-app", map[string]string{"bin/app": "app\n"})
	img := transporttest.Describe(t, "onbase", ocispec.ImageConfig{}, []transporttest.Layer{{Paths: []layers.Path{app}}}, layers.WithRoot(root))
	img.Layers = append([]description.Layer{{
		Blob:   &description.BlobRef{Path: base, File: file, Repository: repository},
		Digest: d, Size: int64(len(data)), DiffID: digest.FromString("tar"), MediaType: ocispec.MediaTypeImageLayerGzip,
	}}, img.Layers...)
	img.Version = img.NeededVersion()
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	desc = writeDesc(t, img)
	opts = []registry.Option{stateless(t), registry.WithLayerOptions(layers.WithRoot(root)), registry.WithRetry(1, 10*time.Millisecond)}
	return root, base, file, data, desc, opts
}

// TestBlobLayerMountNeedsFile: a blob layer's repository is offered as a
// mount source only when the layer's file is in the store with its size:
// a description cannot make nixpush copy, by mount, a blob the user's
// credentials reach but the store does not hold.
func TestBlobLayerMountNeedsFile(t *testing.T) {
	reg := testenv.StartRegistry(t)
	root, base, file, _, desc, opts := blobLayerImage(t, reg.Host+"/holder")
	if _, err := registry.Push(context.Background(), []registry.Image{{Source: desc, Destinations: []string{reg.Host + "/holder:v1"}}}, opts...); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, base, file)); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	_, err := registry.Push(context.Background(), []registry.Image{{Source: desc, Destinations: []string{reg.Host + "/other:v1"}}}, opts...)
	if err == nil || !strings.Contains(err.Error(), base+"/"+file) {
		t.Fatalf("err = %v; want the push to fail naming %s", err, base+"/"+file)
	}
	for _, q := range reg.Requests(mark) {
		if strings.HasPrefix(q.Path, "/v2/other/") && (q.IsBlobWrite() && strings.Contains(q.Path, "mount=") || q.IsManifestWrite()) {
			t.Errorf("%s: mounted or written without the layer's file", q)
		}
	}
}

// TestBlobLayerChanged: a base image's layer (a blob layer) is streamed
// unhashed; when its file no longer has the recorded bytes, the registry
// refuses the digest, the push fails naming the file, and no manifest is
// written.
func TestBlobLayerChanged(t *testing.T) {
	reg := testenv.StartRegistry(t)
	root, base, file, data, desc, opts := blobLayerImage(t, reg.Host+"/base")

	ref := reg.Host + "/onbase:v1"
	if _, err := registry.Push(context.Background(), []registry.Image{{Source: desc, Destinations: []string{ref}}}, opts...); err != nil {
		t.Fatal(err)
	}
	if got := pullAll(t, ref); got == "" {
		t.Fatalf("%s not pulled", ref)
	}

	changed := append([]byte(nil), data...)
	changed[0] ^= 1
	if err := os.WriteFile(filepath.Join(root, base, file), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	_, err := registry.Push(context.Background(), []registry.Image{{Source: desc, Destinations: []string{reg.Host + "/changed:v1"}}}, opts...)
	var le *description.LayerError
	var fm *layers.FileMismatchError
	if !errors.As(err, &le) || !errors.As(err, &fm) || !strings.Contains(err.Error(), base+"/"+file) {
		t.Fatalf("err = %v; want a LayerError naming %s", err, base+"/"+file)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() {
			t.Errorf("a manifest was written: %s", q)
		}
	}
}
