package registry_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// indexFixture is an index of an amd64 and an arm64 image sharing a base
// layer, each with its own app layer, over a fixture store.
type indexFixture struct {
	rootDir string
	root    registry.Option
	built   *transport.BuiltIndex
	apps    []layers.Path // amd64's, arm64's
}

func newIndexFixture(t *testing.T) *indexFixture { return newIndexFixtureWith(t, false) }

// newIndexFixtureWith makes the index fixture, each image with an SBOM
// when sboms is set.
func newIndexFixtureWith(t *testing.T, sboms bool) *indexFixture {
	t.Helper()
	f := &indexFixture{rootDir: t.TempDir()}
	f.root = registry.WithLayerOptions(layers.WithRoot(f.rootDir))
	base := fixturePath(t, f.rootDir, "00000000000000000000000000000ccc-index-base", map[string]string{"lib/data": strings.Repeat("base\n", 20000)})
	idx := &description.Index{Version: description.Version, Name: "multi", Annotations: map[string]string{ocispec.AnnotationVersion: "1"}}
	var imgs []*description.Image
	for i, arch := range []string{"amd64", "arm64"} {
		app := fixturePath(t, f.rootDir, fmt.Sprintf("0000000000000000000000000000ddd%d-index-app-%s", i, arch), map[string]string{"app": "app for " + arch + "\n"})
		f.apps = append(f.apps, app)
		img := transporttest.Describe(t, "multi", ocispec.ImageConfig{Cmd: []string{app.Path + "/app"}}, []transporttest.Layer{
			{Paths: []layers.Path{base}},
			{Paths: []layers.Path{app}},
		}, layers.WithRoot(f.rootDir))
		img.Architecture = arch
		if sboms {
			attachSBOM(t, f.rootDir, img, fmt.Sprintf("0000000000000000000000000000sss%d-image-%s.json-sbom", i, arch))
		}
		m, err := description.ManifestFor(fmt.Sprintf("/nix/store/0000000000000000000000000000fff%d-image-%s.json", i, arch), img)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, m)
		imgs = append(imgs, img)
	}
	if err := idx.Validate(); err != nil {
		t.Fatal(err)
	}
	bi, err := transport.BuildIndex(idx, imgs, layers.WithRoot(f.rootDir))
	if err != nil {
		t.Fatal(err)
	}
	f.built = bi
	return f
}

func (f *indexFixture) push(t *testing.T, dests []string, opts ...registry.Option) (*registry.Report, error) {
	t.Helper()
	in := []registry.Image{{Source: "index.json", Destinations: dests, Index: f.built}}
	return registry.Push(context.Background(), in, append([]registry.Option{stateless(t), f.root, registry.WithRetry(1, 10*time.Millisecond)}, opts...)...)
}

// TestIndexPush: the engine pushes both images' blobs (the shared one
// once), each manifest by digest, then the index under its tag; the
// registry serves the index nixpush built, and skopeo copies every image
// of it. A re-push makes one HEAD; a new tag of the same repository is one
// manifest write and no blob request.
func TestIndexPush(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newIndexFixture(t)
	mark := reg.Mark()
	rep, err := f.push(t, []string{reg.Host + "/multi:v1"})
	if err != nil {
		t.Fatal(err)
	}
	ops := countOps(t, reg.Requests(mark))
	if len(ops.uploads) != 5 || ops.manifests != 3 { // base, 2 apps, 2 configs; 2 manifests and the index
		t.Errorf("uploads %v, %d manifests written; want 5 blobs once each and 3 manifests", ops.uploads, ops.manifests)
	}
	for d, n := range ops.uploads {
		if n != 1 {
			t.Errorf("%s uploaded %d times", d, n)
		}
	}
	if len(rep.Images) != 1 || rep.Images[0].Digest != f.built.Digest || len(rep.Images[0].Platforms) != 2 ||
		rep.Images[0].Platforms[1].Platform != "linux/arm64" || rep.Images[0].Platforms[1].Digest != f.built.Images[1].ManifestDigest {
		t.Errorf("report %+v", rep.Images)
	}
	raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/multi:v1")
	if string(raw) != string(f.built.Manifest) {
		t.Errorf("the registry's index:\n%s\nwant\n%s", raw, f.built.Manifest)
	}
	dir := t.TempDir()
	testenv.Skopeo(t, "copy", "--src-tls-verify=false", "--all", "--preserve-digests", "docker://"+reg.Host+"/multi:v1", "oci:"+dir+":v1")
	for _, b := range f.built.Images {
		for _, bl := range b.Blobs() {
			if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", bl.Digest.Encoded())); err != nil {
				t.Errorf("skopeo copy --all lacks %s: %v", bl.Digest, err)
			}
		}
	}

	mark = reg.Mark()
	if _, err := f.push(t, []string{reg.Host + "/multi:v1"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range reg.Requests(mark) {
		if q.Method != "GET" && q.Method != "HEAD" || strings.Contains(q.Path, "/blobs/") {
			t.Errorf("re-push: %s", q)
		}
	}

	mark = reg.Mark()
	if _, err := f.push(t, []string{reg.Host + "/multi:v2"}); err != nil {
		t.Fatal(err)
	}
	ops = countOps(t, reg.Requests(mark))
	if ops.heads != 0 || ops.writes != 0 || ops.manifests != 1 {
		t.Errorf("a new tag of an index the repository holds: %+v, want one manifest write and no blob request", ops)
	}
}

// TestIndexImageFails: when an image of an index cannot be pushed (its
// app layer's store path changed), the index is not written, and the error
// names the image (manifests[1], its platform) and the store path.
func TestIndexImageFails(t *testing.T) {
	reg := testenv.StartRegistry(t)
	for _, keepGoing := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep going %v", keepGoing), func(t *testing.T) {
			f := newIndexFixture(t)
			arm := f.apps[1]
			if err := os.WriteFile(filepath.Join(f.rootDir, arm.Path, "app"), []byte("changed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			repo := fmt.Sprintf("%s/fails-%v", reg.Host, keepGoing)
			mark := reg.Mark()
			rep, err := f.push(t, []string{repo + ":v1"}, registry.WithKeepGoing(keepGoing))
			var le *description.LayerError
			if !errors.Is(err, registry.ErrIncomplete) || !errors.As(err, &le) {
				t.Fatalf("err = %v, want ErrIncomplete and a LayerError", err)
			}
			for _, want := range []string{"no index written", "manifests[1] (linux/arm64", arm.Path} {
				if !strings.Contains(err.Error(), want) || !strings.Contains(rep.Images[0].Error, want) {
					t.Errorf("error does not name %q:\n  %v\n  report: %s", want, err, rep.Images[0].Error)
				}
			}
			if rep.Images[0].Status != registry.StatusFailed {
				t.Errorf("report status %s", rep.Images[0].Status)
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() && (strings.HasSuffix(q.Path, "/manifests/v1") || strings.Contains(q.Path, f.built.Images[1].ManifestDigest.String())) {
					t.Errorf("wrote %s although the arm64 image failed", q)
				}
			}
		})
	}
}

// TestIndexReferrersAfterManifests: an index's images get their SBOMs
// (on docker-registry 2.8, the fallback tag sha256-<hex>) only once their
// manifests are in the repository; when one image fails, no manifest is
// written, and so no SBOM of the other either.
func TestIndexReferrersAfterManifests(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.WithImplementation(testenv.DockerRegistry))
	f := newIndexFixtureWith(t, true)
	mark := reg.Mark()
	if _, err := f.push(t, []string{reg.Host + "/sboms:v1"}); err != nil {
		t.Fatal(err)
	}
	qs := reg.Requests(mark)
	for _, img := range f.built.Images {
		d := img.ManifestDigest
		manifest := slices.IndexFunc(qs, func(q testenv.Request) bool {
			return q.IsManifestWrite() && strings.HasSuffix(q.Path, "/manifests/"+d.String())
		})
		fallback := slices.IndexFunc(qs, func(q testenv.Request) bool {
			return q.IsManifestWrite() && strings.HasSuffix(q.Path, "/manifests/"+d.Algorithm().String()+"-"+d.Encoded())
		})
		if manifest < 0 || fallback < 0 || fallback < manifest {
			t.Errorf("%s: manifest written at request %d, its SBOM's fallback tag at %d; want both, the manifest first", d, manifest, fallback)
		}
	}

	f = newIndexFixtureWith(t, true)
	if err := os.WriteFile(filepath.Join(f.rootDir, f.apps[1].Path, "app"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark = reg.Mark()
	if _, err := f.push(t, []string{reg.Host + "/sboms-fail:v1"}, registry.WithKeepGoing(true)); !errors.Is(err, registry.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() && strings.HasPrefix(q.Path, "/v2/sboms-fail/") {
			t.Errorf("wrote %s although the arm64 image failed and no image of the index is written", q)
		}
	}
}

// TestIndexDescriptionErrors: an index file whose image is not what it
// says, or is a symlink out of the store, is refused before any request,
// naming manifests[i].
func TestIndexDescriptionErrors(t *testing.T) {
	f := newIndexFixture(t)
	store := filepath.Join(f.rootDir, layers.StoreDir)
	idx := *f.built.Index
	idx.Manifests = append([]description.IndexManifest(nil), idx.Manifests...)
	for i, b := range f.built.Images {
		p := idx.Manifests[i].Image
		data, err := description.Marshal(b.Image)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.rootDir, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(t *testing.T, idx *description.Index) string {
		data, err := description.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(t.TempDir(), "index.json")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	if _, err := transport.NewReference(write(t, &idx), layers.WithRoot(f.rootDir)); err != nil {
		t.Fatalf("the fixture index: %v", err)
	}

	outside := filepath.Join(t.TempDir(), "outside.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := "/nix/store/0000000000000000000000000000ggg0-image-link.json"
	if err := os.Symlink(outside, filepath.Join(store, filepath.Base(link))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(idx *description.Index)
		want string
	}{
		{"other digest", func(idx *description.Index) { idx.Manifests[1].Digest = digest.FromString("other") },
			"manifests[1] (" + idx.Manifests[1].Image + "): the image's manifest is " + f.built.Images[1].ManifestDigest.String()},
		{"symlink out of the store", func(idx *description.Index) { idx.Manifests[0].Image = link },
			"manifests[0].image: store path " + link + ": open "},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := idx
			bad.Manifests = append([]description.IndexManifest(nil), idx.Manifests...)
			bad.Digest = ""
			c.edit(&bad)
			_, err := registry.Push(context.Background(), []registry.Image{{Source: write(t, &bad), Destinations: []string{"127.0.0.1:1/x:v1"}}},
				stateless(t), f.root)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing\n  %s", err, c.want)
			}
		})
	}
}
