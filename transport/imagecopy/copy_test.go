package imagecopy_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestPushToRegistry pushes a nix: image, reads it back with skopeo and
// umoci, and pushes it again from a fresh machine: the second push must
// upload no blob at all.
func TestPushToRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	built, err := transport.Build(f.img)
	if err != nil {
		t.Fatal(err)
	}
	dest := "docker://" + reg.Host + "/fixture:v1"

	mark := reg.Mark()
	res := pushNix(t, f, dest, statelessOpts(t, reg)...)
	if res.Digest != built.ManifestDigest {
		t.Errorf("pushed manifest %s, want the described %s", res.Digest, built.ManifestDigest)
	}
	first := reg.Requests(mark)
	if n := countBlobWrites(first); n == 0 {
		t.Errorf("first push wrote no blob")
	}
	// Each missing blob is checked once, not once by copy.Image and again
	// by the upload.
	heads := 0
	for _, q := range first {
		if q.Method == http.MethodHead && strings.Contains(q.Path, "/blobs/") {
			heads++
		}
	}
	if heads != len(f.img.Layers)+1 {
		t.Errorf("first push: %d blob HEADs, want one per blob (%d)", heads, len(f.img.Layers)+1)
	}

	si := inspectRemote(t, dest, "--tls-verify=false")
	if si.Digest != built.ManifestDigest.String() {
		t.Errorf("skopeo inspect: digest %s, want %s", si.Digest, built.ManifestDigest)
	}
	if len(si.Layers) != len(f.img.Layers) {
		t.Fatalf("skopeo inspect: %d layers, want %d", len(si.Layers), len(f.img.Layers))
	}
	for i, l := range f.img.Layers {
		if si.Layers[i] != l.Digest.String() {
			t.Errorf("layer %d: %s, want %s", i, si.Layers[i], l.Digest)
		}
	}
	cfg := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--config", "--raw", dest)
	if string(cfg) != string(built.Config) {
		t.Errorf("config in the registry differs from the described one:\n%s\nwant\n%s", cfg, built.Config)
	}

	// Back to an OCI layout, unpacked by umoci.
	umoci := testenv.Tool(t, "umoci")
	layout := filepath.Join(t.TempDir(), "oci")
	testenv.Skopeo(t, "copy", "--src-tls-verify=false", dest, "oci:"+layout+":v1")
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(umoci, "unpack", "--image", layout+":v1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	checkRootfs(t, f, filepath.Join(bundle, "rootfs"))

	// Again, as a fresh CI runner.
	// The store is read below an empty root, so reading any layer fails:
	// no tar work happens for blobs the registry has.
	mark = reg.Mark()
	empty, err := transport.NewReference(f.path, layers.WithRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	destRef, err := imagecopy.ParseReference(dest)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := imagecopy.CopyImage(context.Background(), empty, destRef, statelessOpts(t, reg)...)
	if err != nil {
		t.Fatalf("re-push read the store: %v", err)
	}
	if res2.Digest != res.Digest {
		t.Errorf("second push: manifest %s, want %s", res2.Digest, res.Digest)
	}
	// The registry is asked for the manifest first: the tag names it, so
	// no blob is checked and nothing is written. GET /v2/ and the HEAD.
	reqs := reg.Requests(mark)
	if len(reqs) > 3 {
		t.Errorf("second push: %d requests, want at most 3:\n%v", len(reqs), reqs)
	}
	for _, q := range reqs {
		if q.Method != http.MethodHead && q.Path != "/v2/" || strings.Contains(q.Path, "/blobs/") {
			t.Errorf("second push: %s; want only GET /v2/ and manifest HEADs", q)
		}
	}
}

func countBlobWrites(reqs []testenv.Request) int {
	n := 0
	for _, q := range reqs {
		if q.IsBlobWrite() {
			n++
		}
	}
	return n
}

// TestSharedLayers pushes image B, which shares two layers with the
// already-pushed image A: only B's own layer and config are uploaded. A
// second repository of the same registry gets A's blobs by mounts.
func TestSharedLayers(t *testing.T) {
	reg := testenv.StartRegistry(t)
	a := newFixture(t, "a")
	pushNix(t, a, "docker://"+reg.Host+"/a:v1", statelessOpts(t, reg)...)

	extra := transporttest.AddStorePath(t, "extra-fixture", map[string]transporttest.File{
		"share/extra": {Data: "only in image b\n"},
	})
	b := *a
	b.img = transporttest.Describe(t, "b", a.img.Config, []transporttest.Layer{
		{Paths: a.img.Layers[0].Paths, Perms: a.img.Layers[0].Perms},
		{Paths: a.img.Layers[1].Paths, Perms: a.img.Layers[1].Perms},
		{Paths: []layers.Path{extra}},
	})
	b.path = transporttest.Write(t, b.img)

	tests := []struct {
		name, repo string
		mountFrom  []string
		wantPuts   int // blob uploads finished with PUT
		wantMounts int // POSTs with ?mount=
	}{
		// Another repository: shared layers are mounted from a/, which the
		// caller names; containers/image alone knows no location on a fresh
		// machine. The new layer and the config are uploaded.
		{name: "mounted from another repository", repo: "other:b", mountFrom: []string{"a"}, wantPuts: 2, wantMounts: 2},
		// Same repository: the two shared layers exist, the new layer and
		// the config are uploaded.
		{name: "same repository", repo: "a:b", wantPuts: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mark := reg.Mark()
			opts := append(statelessOpts(t, reg), imagecopy.WithMountFrom(tc.mountFrom...))
			pushNix(t, &b, "docker://"+reg.Host+"/"+tc.repo, opts...)
			var puts, mounts int
			for _, q := range reg.Requests(mark) {
				switch {
				case q.Method == http.MethodPut && strings.Contains(q.Path, "/blobs/uploads/"):
					puts++
				case q.Method == http.MethodPost && strings.Contains(q.Path, "mount="):
					mounts++
				}
			}
			if puts != tc.wantPuts || mounts != tc.wantMounts {
				t.Errorf("%d blob uploads and %d mounts, want %d and %d; requests:\n%v", puts, mounts, tc.wantPuts, tc.wantMounts, reg.Requests(mark))
			}
		})
	}
}

// TestDestinations copies a nix: image to local transports and reads each
// back with skopeo.
func TestDestinations(t *testing.T) {
	f := newFixture(t, "fixture")
	built, err := transport.Build(f.img)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dest   string
		sameManifest bool // Docker archives need a converted manifest
	}{
		{"oci", "oci:{dir}/layout:v1", true},
		{"oci-archive", "oci-archive:{dir}/image.tar:v1", true},
		{"dir", "dir:{dir}/dir", true},
		{"docker-archive", "docker-archive:{dir}/docker.tar:fixture:v1", false},
	}
	reg := testenv.StartRegistry(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dest := strings.ReplaceAll(tc.dest, "{dir}", t.TempDir())
			opts := []imagecopy.Option{imagecopy.WithRegistryOptions(registry.WithBlobInfoCacheDir(t.TempDir()))}
			if tc.name == "docker-archive" {
				opts = append(opts, imagecopy.WithAdditionalTags("example.com/fixture:extra"))
			}
			res := pushNix(t, f, dest, opts...)
			if tc.sameManifest && res.Digest != built.ManifestDigest {
				t.Errorf("manifest %s, want %s", res.Digest, built.ManifestDigest)
			}
			si := inspectRemote(t, dest)
			if len(si.Layers) != len(f.img.Layers) {
				t.Fatalf("skopeo inspect %s: %d layers, want %d", dest, len(si.Layers), len(f.img.Layers))
			}
			for i, l := range f.img.Layers {
				if si.Layers[i] != l.Digest.String() {
					t.Errorf("layer %d: %s, want %s", i, si.Layers[i], l.Digest)
				}
			}
			if tc.name == "docker-archive" {
				archive := strings.TrimSuffix(strings.TrimPrefix(dest, "docker-archive:"), ":fixture:v1")
				inspectRemote(t, "docker-archive:"+archive+":example.com/fixture:extra")
			}

			// And on from there to a registry, as any other source.
			to := "docker://" + reg.Host + "/from-" + tc.name + ":v1"
			if _, err := imagecopy.Copy(context.Background(), dest, to, statelessOpts(t, reg)...); err != nil {
				t.Fatalf("copy %s to %s: %v", dest, to, err)
			}
			if n := len(inspectRemote(t, to, "--tls-verify=false").Layers); n != len(f.img.Layers) {
				t.Errorf("%s: %d layers, want %d", to, n, len(f.img.Layers))
			}
		})
	}
}

// TestChangedStorePath pushes an image whose store contents changed after
// the build, and one whose description has a wrong digest: the push fails
// naming the layer (and the changed store path), and no manifest is
// written.
func TestChangedStorePath(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")

	// A copy of the app's store path under a private root, changed after
	// the layer was hashed: the same layer size (copy.Image's hash finds
	// it) or larger (the stream's size check does).
	tampered := func(t *testing.T, content string) *transport.Reference {
		root := t.TempDir()
		copyTree(t, f.app.Path, filepath.Join(root, f.app.Path))
		copyTree(t, f.lib.Path, filepath.Join(root, f.lib.Path))
		img := transporttest.Describe(t, "changed", f.img.Config, []transporttest.Layer{
			{Paths: []layers.Path{f.lib}},
			{Paths: []layers.Path{f.app}},
		}, layers.WithRoot(root))
		if err := os.WriteFile(filepath.Join(root, f.app.Path, "bin/app"), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		ref, err := transport.NewReference(transporttest.Write(t, img), layers.WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	// The tests' wants name the layer at fault as layer1, which stands for
	// "layers[1] (DIGEST" with the digest its description records.
	const layer1 = "layers[1] ("

	wrong := *f.img
	wrong.Layers = append(wrong.Layers[:0:0], f.img.Layers...)
	wrong.Layers[1].Digest = digest.Digest("sha256:" + strings.Repeat("0", 64))
	wrong.Layers[1].DiffID = wrong.Layers[1].Digest

	tests := []struct {
		name string
		ref  func(t *testing.T) *transport.Reference
		want []string
	}{
		{"store path changed", func(t *testing.T) *transport.Reference {
			return tampered(t, "#!/bin/sh\necho tampered\n")
		}, []string{layer1, "layer hashes to", f.app.Path}},
		{"store path grew", func(t *testing.T) *transport.Reference {
			return tampered(t, "#!/bin/sh\n"+strings.Repeat("echo tampered\n", 100))
		}, []string{layer1, "larger than the recorded", f.app.Path}},
		{"description edited", func(t *testing.T) *transport.Reference {
			ref, err := transport.NewReference(transporttest.Write(t, &wrong))
			if err != nil {
				t.Fatal(err)
			}
			return ref
		}, []string{layer1, "no store path's NAR hash changed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := strings.ReplaceAll(tc.name, " ", "-")
			dest, err := imagecopy.ParseReference("docker://" + reg.Host + "/" + repo + ":v1")
			if err != nil {
				t.Fatal(err)
			}
			ref := tc.ref(t)
			mark := reg.Mark()
			_, err = imagecopy.CopyImage(context.Background(), ref, dest, append(statelessOpts(t, reg), imagecopy.WithRegistryOptions(registry.WithRetry(2, 1)))...)
			if err == nil {
				t.Fatal("push succeeded")
			}
			t.Logf("push failed as it should: %v", err)
			var le *description.LayerError
			var mm *layers.MismatchError
			if !errors.As(err, &le) || !errors.As(err, &mm) {
				t.Fatalf("error is not a *transport.LayerError holding a *layers.MismatchError: %v", err)
			}
			for _, w := range tc.want {
				if w == layer1 {
					w += ref.Image().Layers[1].Digest.String()
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() {
					t.Errorf("a manifest was written: %s", q)
				}
			}
			c, err := reg.Client()
			if err != nil {
				t.Fatal(err)
			}
			// Neither the manifest nor the bad layer (under the digest it
			// claims or the one it has) reached the registry.
			for _, p := range []string{"manifests/v1", "blobs/" + mm.Want.String(), "blobs/" + mm.Got.String()} {
				res, err := c.Head(reg.URL() + "/v2/" + repo + "/" + p)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("HEAD %s: %s, want 404", p, res.Status)
				}
			}
		})
	}

	// Every destination gets the same check: copy.Image hashes what it
	// writes to an OCI layout too, and the layer is named the same way.
	t.Run("to oci", func(t *testing.T) {
		ref := tampered(t, "#!/bin/sh\necho tampered\n")
		dest, err := imagecopy.ParseReference("oci:" + t.TempDir() + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = imagecopy.CopyImage(context.Background(), ref, dest)
		var le *description.LayerError
		var mm *layers.MismatchError
		if !errors.As(err, &le) || !errors.As(err, &mm) || le.Index != 1 || !strings.Contains(err.Error(), f.app.Path) {
			t.Fatalf("got %v, want layers[1]'s mismatch naming %s", err, f.app.Path)
		}
	})
}

// copyTree copies a store path, keeping symlinks and the executable bit.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp %s: %v\n%s", src, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", dst).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
}

// TestAdditionalTags tags the pushed image in the same repository (one
// manifest PUT) and in another repository of the registry (blobs mounted,
// none uploaded).
func TestAdditionalTags(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	mark := reg.Mark()
	res := pushNix(t, f, "docker://"+reg.Host+"/app:v1", append(statelessOpts(t, reg),
		imagecopy.WithAdditionalTags("latest", reg.Host+"/mirror:v1"))...)
	var puts, mounts int
	manifests := map[string]bool{}
	for _, q := range reg.Requests(mark) {
		switch {
		case q.IsManifestWrite():
			manifests[q.Path] = true
		case q.Method == http.MethodPut && strings.Contains(q.Path, "/blobs/uploads/"):
			puts++
		case q.Method == http.MethodPost && strings.Contains(q.Path, "/v2/mirror/") && strings.Contains(q.Path, "mount="):
			mounts++
		case q.IsBlobWrite() && strings.Contains(q.Path, "/v2/mirror/"):
			t.Errorf("blob uploaded to the mirror: %s", q)
		}
	}
	want := len(f.img.Layers) + 1
	if puts != want || mounts != want {
		t.Errorf("%d uploads and %d mounts, want %d and %d", puts, mounts, want, want)
	}
	for _, m := range []string{"/v2/app/manifests/v1", "/v2/app/manifests/latest", "/v2/mirror/manifests/v1"} {
		if !manifests[m] {
			t.Errorf("no PUT %s; manifests written: %v", m, manifests)
		}
	}
	for _, tag := range []string{"app:latest", "mirror:v1"} {
		if si := inspectRemote(t, "docker://"+reg.Host+"/"+tag, "--tls-verify=false"); si.Digest != res.Digest.String() {
			t.Errorf("%s: digest %s, want %s", tag, si.Digest, res.Digest)
		}
	}
}

// TestAdditionalTagsOtherSource: an image that is not a nix: one, copied
// by copy.Image to a registry, gets its additional tags too: a tag of the
// repository, and another repository whose blobs are mounted, not
// uploaded.
func TestAdditionalTagsOtherSource(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":v1"
	pushNix(t, f, layout)
	mark := reg.Mark()
	// From an OCI layout, copy.Image compresses the layers: the
	// registry's digests are not the description's.
	res, err := imagecopy.Copy(context.Background(), layout, "docker://"+reg.Host+"/plain:v1",
		append(statelessOpts(t, reg), imagecopy.WithAdditionalTags("latest", reg.Host+"/plain-mirror:v1"))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() && strings.Contains(q.Path, "/plain-mirror/") && !strings.Contains(q.Path, "mount=") {
			t.Errorf("blob uploaded to the mirror, not mounted: %s", q)
		}
	}
	for _, tag := range []string{"plain:v1", "plain:latest", "plain-mirror:v1"} {
		if si := inspectRemote(t, "docker://"+reg.Host+"/"+tag, "--tls-verify=false"); si.Digest != res.Digest.String() {
			t.Errorf("%s: digest %s, want %s", tag, si.Digest, res.Digest)
		}
	}
}
