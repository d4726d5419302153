package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestSharedLayerMismatch: images A and B share a layer (same digest)
// made from different store paths, each copied to "/" (copyToRoot), so
// the bytes are the same. A is first, so the layer would be read from A's
// store; A's store path then changes. Only A fails, with an error naming
// A's store path and never B's; the layer is read from B's store instead
// and B is pushed whole. When B's store path changed too, each image fails
// with its own error. Without --keep-going, A's failure stops the run, but
// B is not blamed for it.
func TestSharedLayerMismatch(t *testing.T) {
	reg := testenv.StartRegistry(t)
	tests := []struct {
		name      string
		keepGoing bool
		changeB   bool
	}{
		{"one image changed, keep going", true, false},
		{"one image changed", false, false},
		{"both changed, keep going", true, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSharedPair(t)
			s.change(t, s.pathA)
			if tc.changeB {
				s.change(t, s.pathB)
			}
			repoA, repoB := fmt.Sprintf("shared%d/a", i), fmt.Sprintf("shared%d/b", i)
			imgs := []registry.Image{
				{Source: s.descA, Destinations: []string{reg.Host + "/" + repoA + ":v1"}},
				{Source: s.descB, Destinations: []string{reg.Host + "/" + repoB + ":v1"}},
			}
			var progress bytes.Buffer
			mark := reg.Mark()
			rep, err := registry.Push(context.Background(), imgs, stateless(t), s.root,
				registry.WithRetry(2, 10*time.Millisecond), registry.WithKeepGoing(tc.keepGoing),
				registry.WithProgress(&progress, false, time.Hour))
			var le *description.LayerError
			if !errors.Is(err, registry.ErrIncomplete) || !errors.As(err, &le) {
				t.Fatalf("err = %v, want ErrIncomplete and a LayerError\n%s", err, progress.String())
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), s.pathA.Path) || strings.Contains(err.Error(), s.pathB.Path) {
				t.Errorf("the run's error does not name A's store path %s alone: %v", s.pathA.Path, err)
			}
			if strings.Contains(progress.String(), "retrying") {
				t.Errorf("a mismatch was retried:\n%s", progress.String())
			}
			a, b := rep.Images[0], rep.Images[1]
			if a.Status != registry.StatusFailed || !strings.Contains(a.Error, s.pathA.Path) || strings.Contains(a.Error, s.pathB.Path) {
				t.Errorf("A: %s %q, want failed, naming %s only", a.Status, a.Error, s.pathA.Path)
			}
			switch {
			case tc.changeB:
				if b.Status != registry.StatusFailed || !strings.Contains(b.Error, s.pathB.Path) || strings.Contains(b.Error, s.pathA.Path) {
					t.Errorf("B: %s %q, want failed, naming %s only", b.Status, b.Error, s.pathB.Path)
				}
			case tc.keepGoing:
				if b.Status != registry.StatusPushed {
					t.Errorf("B: %s %q, want pushed: its store gives the shared layer", b.Status, b.Error)
				}
				if !strings.Contains(progress.String(), "reading it from "+s.descB) {
					t.Errorf("the fall back to B's store was not reported:\n%s", progress.String())
				}
				if got := pullAll(t, reg.Host+"/"+repoB+":v1"); got != s.builtB.ManifestDigest {
					t.Errorf("%s: %s, want %s", repoB, got, s.builtB.ManifestDigest)
				}
			default:
				// The run stops at A's failure; B may or may not have
				// finished, but is never failed for A's store.
				if b.Status == registry.StatusFailed || strings.Contains(b.Error, s.pathA.Path) {
					t.Errorf("B: %s %q: blamed for A's store", b.Status, b.Error)
				}
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() && (strings.Contains(q.Path, "/"+repoA+"/") || tc.changeB) {
					t.Errorf("a manifest of a failed image was written: %s", q)
				}
			}
		})
	}
}

// TestSharedLayerMismatchAfterSkip: A's repository already has the shared
// layer (B was pushed there), so A needs nothing of it from its store; B's
// repository lacks it and refuses mounts, so the layer is read from A's
// store, which changed.
// Without --keep-going the run stops there: its error names A's store
// path (though no destination of A may have failed), never B's, and B is
// not failed.
func TestSharedLayerMismatchAfterSkip(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	proxy.Fail(testenv.FaultRule{Method: http.MethodPost, Times: -1, Kind: testenv.RefuseMount})
	s := newSharedPair(t)
	imgA := registry.Image{Source: s.descA, Destinations: []string{proxy.Host + "/skip/a:v1"}}
	prep := registry.Image{Source: s.descB, Destinations: []string{proxy.Host + "/skip/a:prep"}}
	if _, err := registry.Push(context.Background(), []registry.Image{prep}, stateless(t), s.root); err != nil {
		t.Fatal(err)
	}
	s.change(t, s.pathA)
	imgs := []registry.Image{imgA, {Source: s.descB, Destinations: []string{proxy.Host + "/skip/b:v1"}}}
	rep, err := registry.Push(context.Background(), imgs, stateless(t), s.root, registry.WithRetry(2, 10*time.Millisecond))
	var le *description.LayerError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), s.pathA.Path) || strings.Contains(err.Error(), s.pathB.Path) {
		t.Fatalf("err = %v, want A's LayerError, naming %s only", err, s.pathA.Path)
	}
	t.Logf("error: %v", err)
	if b := rep.Images[1]; b.Status == registry.StatusFailed {
		t.Errorf("B: %s %q: blamed for A's store", b.Status, b.Error)
	}
}

// TestStoredSizeMismatch: a description whose layer has the digest of a
// layer the registry already holds, but another size, fails naming the
// layer and both sizes, whether the registry has the blob in the
// repository (HEAD) or mounts it from the run's home repository; no
// manifest is written. An image that describes the layer rightly, in the
// same run, is pushed.
func TestStoredSizeMismatch(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFamily(t, 1, 0)
	if _, err := registry.Push(context.Background(), []registry.Image{{Source: f.paths[0], Destinations: []string{reg.Host + "/size/app:v1"}}}, stateless(t)); err != nil {
		t.Fatal(err)
	}
	good, err := description.ReadFile(f.paths[0])
	if err != nil {
		t.Fatal(err)
	}
	real := good.Layers[2].Size
	for i, size := range []int64{8 << 30, real - 1} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			bad := *good
			bad.Layers = append(bad.Layers[:0:0], good.Layers...)
			bad.Layers[2].Size = size
			badPath := writeDesc(t, &bad)
			tag := "bad" + strconv.Itoa(i)
			// The blob is in size/app (HEAD); size/otherN gets it mounted.
			badDests := []string{reg.Host + "/size/app:" + tag, reg.Host + "/size/other" + strconv.Itoa(i) + ":" + tag}
			imgs := []registry.Image{
				{Source: badPath, Destinations: badDests},
				{Source: f.paths[0], Destinations: []string{reg.Host + "/size/good:" + tag}},
			}
			mark := reg.Mark()
			rep, err := registry.Push(context.Background(), imgs, stateless(t), registry.WithKeepGoing(true), registry.WithRetry(2, 10*time.Millisecond))
			var se *transport.SizeError
			if !errors.As(err, &se) || se.Index != 2 || se.Described != size || se.Stored != real {
				t.Fatalf("err = %v, want a *transport.SizeError for layers[2]: %d described, %d stored", err, size, real)
			}
			t.Logf("error: %v", err)
			for _, w := range []string{"layers[2] (" + good.Layers[2].Digest.String() + ")", strconv.FormatInt(size, 10), strconv.FormatInt(real, 10), "description's size is wrong"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q", w)
				}
			}
			if rep.Images[0].Status != registry.StatusFailed || rep.Images[1].Status != registry.StatusPushed {
				t.Errorf("statuses %s, %s; want the bad image failed, the good one pushed", rep.Images[0].Status, rep.Images[1].Status)
			}
			for _, d := range rep.Images[0].Destinations {
				if d.Status != registry.StatusFailed {
					t.Errorf("%s: %s, want failed", d.Reference, d.Status)
				}
			}
			ops := countOps(t, reg.Requests(mark))
			if len(ops.mounts) == 0 {
				t.Errorf("nothing was mounted, so the mount path was not tested")
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() && strings.Contains(q.Path, "/manifests/"+tag) && !strings.Contains(q.Path, "/size/good/") {
					t.Errorf("a manifest of the bad image was written: %s", q)
				}
			}
			for _, d := range badDests {
				noManifest(t, reg, d)
			}
		})
	}
}

// TestWrongSizeUploaded: a description claiming the wrong size for a
// layer the destination repository lacks fails when its stream ends at
// another size; an image describing the layer rightly, in the same run,
// gets it uploaded from its own store and is pushed.
func TestWrongSizeUploaded(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFamily(t, 1, 0)
	good, err := description.ReadFile(f.paths[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.Layers = append(bad.Layers[:0:0], good.Layers...)
	bad.Layers[2].Size = 8 << 30
	imgs := []registry.Image{
		{Source: writeDesc(t, &bad), Destinations: []string{reg.Host + "/fresh/bad:v1"}},
		{Source: f.paths[0], Destinations: []string{reg.Host + "/fresh/good:v1"}},
	}
	rep, err := registry.Push(context.Background(), imgs, stateless(t), registry.WithKeepGoing(true), registry.WithRetry(2, 10*time.Millisecond))
	var le *description.LayerError
	var mm *layers.MismatchError
	if !errors.As(err, &le) || !errors.As(err, &mm) || le.Index != 2 || mm.WantSize != bad.Layers[2].Size {
		t.Fatalf("err = %v, want layers[2] of the bad image not to match its size", err)
	}
	t.Logf("error: %v", err)
	if rep.Images[0].Status != registry.StatusFailed || rep.Images[1].Status != registry.StatusPushed {
		t.Errorf("statuses %s, %s; want the bad image failed, the good one pushed", rep.Images[0].Status, rep.Images[1].Status)
	}
	noManifest(t, reg, reg.Host+"/fresh/bad:v1")
	if got := pullAll(t, reg.Host+"/fresh/good:v1"); got != f.builts[0].ManifestDigest {
		t.Errorf("fresh/good:v1: %s, want %s", got, f.builts[0].ManifestDigest)
	}
}

// noManifest checks that the registry serves no manifest for REGISTRY/REPO:TAG.
func noManifest(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	c, err := reg.Client()
	if err != nil {
		t.Fatal(err)
	}
	repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, reg.Host+"/"), ":")
	res, err := c.Head(reg.URL() + "/v2/" + repo + "/manifests/" + tag)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("%s: HEAD answered %s, want 404: a manifest was published", ref, res.Status)
	}
}

// sharedPair is two images whose first layers have the same bytes, made
// from two store paths of a fixture store (read with layers.WithRoot).
type sharedPair struct {
	root         registry.Option
	rootDir      string
	pathA, pathB layers.Path
	descA, descB string
	builtB       *transport.Built
}

func newSharedPair(t *testing.T) *sharedPair {
	t.Helper()
	s := &sharedPair{rootDir: t.TempDir()}
	s.root = registry.WithLayerOptions(layers.WithRoot(s.rootDir))
	content := map[string]string{"etc/data": strings.Repeat("shared bytes\n", 20000), "bin/tool": "#!/bin/sh\n"}
	s.pathA = fixturePath(t, s.rootDir, "00000000000000000000000000000aaa-base-a", content)
	s.pathB = fixturePath(t, s.rootDir, "00000000000000000000000000000bbb-base-b", content)
	describe := func(name string, shared layers.Path) (string, *description.Image) {
		own := fixturePath(t, s.rootDir, "0000000000000000000000000000"+name+"-app-"+name, map[string]string{"app": "app " + name + "\n"})
		shared.Rewrite = "/"
		img := transporttest.Describe(t, name, ocispec.ImageConfig{Cmd: []string{"/app", name}}, []transporttest.Layer{
			{Paths: []layers.Path{shared}},
			{Paths: []layers.Path{own}},
		}, layers.WithRoot(s.rootDir))
		return writeDesc(t, img), img
	}
	var a, b *description.Image
	s.descA, a = describe("aaaa", s.pathA)
	s.descB, b = describe("bbbb", s.pathB)
	if a.Layers[0].Digest != b.Layers[0].Digest {
		t.Fatalf("fixture: the shared layers differ: %s and %s", a.Layers[0].Digest, b.Layers[0].Digest)
	}
	built, err := transport.Build(b)
	if err != nil {
		t.Fatal(err)
	}
	s.builtB = built
	return s
}

// change changes a file of p's contents in the fixture store, as a store
// path that was rebuilt in place or corrupted would.
func (s *sharedPair) change(t *testing.T, p layers.Path) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.rootDir, p.Path, "etc/data"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixturePath writes a store path below root with files (relative path →
// contents) and returns it with its NAR hash, as Nix would record it.
func fixturePath(t *testing.T, root, base string, files map[string]string) layers.Path {
	t.Helper()
	p := layers.StoreDir + "/" + base
	host := filepath.Join(root, p)
	for rel, data := range files {
		f := filepath.Join(host, rel)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := sha256.New()
	if err := nar.DumpPath(h, host); err != nil {
		t.Fatal(err)
	}
	narHash := nixhash.MustNewHashWithEncoding(nixhash.SHA256, h.Sum(nil), nixhash.NixBase32, true).String()
	return layers.Path{Path: p, NarHash: narHash}
}
