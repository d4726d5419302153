package imagecopy_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// compressions are the compressed fixtures: every layer zstd, every layer
// gzip, and one layer of each kind (a buildLayer output keeps its own
// compression, so an image may mix them).
var compressions = []struct {
	name string
	c    []*layers.Compression
}{
	{"zstd", []*layers.Compression{transporttest.Zstd}},
	{"gzip", []*layers.Compression{transporttest.Gzip}},
	{"mixed", []*layers.Compression{nil, {Algorithm: layers.Zstd, Level: 19}, {Algorithm: layers.Gzip, Level: 9}}},
}

// TestCompressedPush pushes compressed nix: images to a registry: the
// registry holds the described manifest, config and blobs (skopeo reads
// them back with their digests checked, umoci unpacks the store paths,
// crane validates the gzip image in full), and a re-push from a fresh
// machine, with no store to read, uploads nothing.
func TestCompressedPush(t *testing.T) {
	reg := testenv.StartRegistry(t)
	for _, tc := range compressions {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "compressed-"+tc.name, tc.c...)
			built, err := transport.Build(f.img)
			if err != nil {
				t.Fatal(err)
			}
			checkDescribed(t, f.img, tc.c)
			dest := "docker://" + reg.Host + "/compressed-" + tc.name + ":v1"

			mark := reg.Mark()
			res := pushNix(t, f, dest, statelessOpts(t, reg)...)
			if res.Digest != built.ManifestDigest {
				t.Errorf("pushed manifest %s, want the described %s", res.Digest, built.ManifestDigest)
			}
			ops := 0
			for _, q := range reg.Requests(mark) {
				if q.Method == http.MethodPut && strings.Contains(q.Path, "/blobs/uploads/") {
					ops++
				}
			}
			if ops != len(f.img.Layers)+1 {
				t.Errorf("first push: %d blob uploads, want %d", ops, len(f.img.Layers)+1)
			}
			if raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", dest); string(raw) != string(built.Manifest) {
				t.Errorf("manifest in the registry:\n%s\nwant\n%s", raw, built.Manifest)
			}
			if cfg := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--config", "--raw", dest); string(cfg) != string(built.Config) {
				t.Errorf("config in the registry:\n%s\nwant\n%s", cfg, built.Config)
			}

			// skopeo checks each blob's digest as it copies; each layer's
			// tar is checked against its diff ID, and unpacked.
			layout := filepath.Join(t.TempDir(), "oci")
			testenv.Skopeo(t, "copy", "--src-tls-verify=false", "--preserve-digests", dest, "oci:"+layout+":v1")
			checkRootfs(t, f, unpackLayout(t, layout, "v1"))

			// nixpush's own copy of an image that is not a nix: one keeps
			// compressed layers as they are (containers/image compresses
			// an uncompressed one for an OCI layout, as for any image).
			copied := "oci:" + filepath.Join(t.TempDir(), "copied") + ":v1"
			res, err = imagecopy.Copy(context.Background(), dest, copied,
				append(statelessOpts(t, reg), imagecopy.WithSourceRegistryOptions(registry.WithTLSVerify(false)))...)
			if err != nil {
				t.Fatalf("copy %s to %s: %v", dest, copied, err)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(res.Manifest, &m); err != nil {
				t.Fatal(err)
			}
			for i, l := range f.img.Layers {
				switch got := m.Layers[i]; {
				case l.Compression != nil && (got.Digest != l.Digest || got.MediaType != l.MediaType):
					t.Errorf("copy: layer %d is %s %s, want it kept as %s %s", i, got.MediaType, got.Digest, l.MediaType, l.Digest)
				case l.Compression == nil && got.MediaType != ocispec.MediaTypeImageLayerGzip:
					t.Errorf("copy: uncompressed layer %d is %s, want containers/image's gzip", i, got.MediaType)
				}
			}

			// crane validate gunzips every layer: the gzip image only (it
			// fails on zstd and on uncompressed layers, not nixpush's
			// doing).
			if tc.name == "gzip" {
				crane := testenv.Tool(t, "crane")
				ref := strings.TrimPrefix(dest, "docker://")
				if out, err := exec.Command(crane, "validate", "--insecure", "--remote", ref).CombinedOutput(); err != nil {
					t.Errorf("crane validate --remote %s: %v\n%s", ref, err, out)
				} else {
					t.Logf("crane validate: %s", out)
				}
			}

			// A fresh machine whose store is empty: nothing is read,
			// nothing written.
			mark = reg.Mark()
			empty, err := transport.NewReference(f.path, layers.WithRoot(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			destRef, err := imagecopy.ParseReference(dest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := imagecopy.CopyImage(context.Background(), empty, destRef, statelessOpts(t, reg)...); err != nil {
				t.Fatalf("re-push read the store: %v", err)
			}
			if n := countBlobWrites(reg.Requests(mark)); n != 0 {
				t.Errorf("re-push: %d blob writes, want none: %v", n, reg.Requests(mark))
			}
		})
	}
}

// checkDescribed checks the description transporttest made: media types
// from the compression, diff IDs of the tars (the blob's digest only when
// uncompressed), and version 2 exactly when a layer is compressed.
func checkDescribed(t *testing.T, img *description.Image, cs []*layers.Compression) {
	t.Helper()
	compressed := false
	for i, l := range img.Layers {
		c := cs[min(i, len(cs)-1)]
		compressed = compressed || c != nil
		want := map[string]string{"": ocispec.MediaTypeImageLayer, layers.Zstd: ocispec.MediaTypeImageLayerZstd, layers.Gzip: ocispec.MediaTypeImageLayerGzip}
		alg := ""
		if c != nil {
			alg = c.Algorithm
		}
		if l.MediaType != want[alg] || (l.DiffID == l.Digest) != (c == nil) {
			t.Errorf("layers[%d]: media type %s, digest %s, diffID %s; compression %v", i, l.MediaType, l.Digest, l.DiffID, c)
		}
	}
	if want := map[bool]int{false: 1, true: 2}[compressed]; img.Version != want {
		t.Errorf("version %d, want %d", img.Version, want)
	}
}

// TestCompressedDestinations copies compressed nix: images to local
// transports. OCI layouts and dir: keep the blobs and the manifest as
// described; a Docker archive holds uncompressed or gzip layers under a
// Docker manifest, so containers/image decompresses them (their digests
// become the diff IDs, the config is unchanged). Each copy is read back
// with skopeo, and unpacked by umoci and compared with the store.
func TestCompressedDestinations(t *testing.T) {
	for _, cc := range compressions[:2] {
		f := newFixture(t, "dest-"+cc.name, cc.c...)
		built, err := transport.Build(f.img)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, dest string
			asBuilt    bool // manifest and layers as described
		}{
			{"oci", "oci:{dir}/layout:v1", true},
			{"oci-archive", "oci-archive:{dir}/image.tar:v1", true},
			{"dir", "dir:{dir}/dir", true},
			{"docker-archive", "docker-archive:{dir}/docker.tar:fixture:v1", false},
		} {
			t.Run(cc.name+"/"+tc.name, func(t *testing.T) {
				dest := strings.ReplaceAll(tc.dest, "{dir}", t.TempDir())
				res := pushNix(t, f, dest, imagecopy.WithRegistryOptions(registry.WithBlobInfoCacheDir(t.TempDir())))
				if tc.asBuilt && (res.Digest != built.ManifestDigest || string(res.Manifest) != string(built.Manifest)) {
					t.Errorf("manifest %s, want %s", res.Digest, built.ManifestDigest)
				}
				if cfg := testenv.Skopeo(t, "inspect", "--config", "--raw", dest); string(cfg) != string(built.Config) {
					t.Errorf("config:\n%s\nwant\n%s", cfg, built.Config)
				}
				var m ocispec.Manifest
				if err := json.Unmarshal(res.Manifest, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Layers) != len(f.img.Layers) {
					t.Fatalf("%d layers, want %d", len(m.Layers), len(f.img.Layers))
				}
				for i, l := range f.img.Layers {
					want, wantType := l.Digest, l.MediaType
					if !tc.asBuilt {
						want, wantType = l.DiffID, "application/vnd.docker.image.rootfs.diff.tar"
					}
					if m.Layers[i].Digest != want || m.Layers[i].MediaType != wantType {
						t.Errorf("layer %d: %s %s, want %s %s", i, m.Layers[i].MediaType, m.Layers[i].Digest, wantType, want)
					}
				}
				if !tc.asBuilt {
					checkArchiveLayers(t, strings.TrimSuffix(strings.TrimPrefix(dest, "docker-archive:"), ":fixture:v1"), f.img)
				}
				// On into an OCI layout, as skopeo reads it (digests checked
				// on the way), then unpacked.
				layout := filepath.Join(t.TempDir(), "oci")
				testenv.Skopeo(t, "copy", dest, "oci:"+layout+":v1")
				checkRootfs(t, f, unpackLayout(t, layout, "v1"))
			})
		}
	}
}

// TestCompressedChangedStorePath: a store path changed after a
// compressed layer was built fails the push, naming the path (the
// compressed stream is hashed as it goes), and writes no manifest, to a
// registry as to an OCI layout.
func TestCompressedChangedStorePath(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	for _, c := range []*layers.Compression{transporttest.Zstd, transporttest.Gzip} {
		t.Run(c.Algorithm, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, f.app.Path, filepath.Join(root, f.app.Path))
			img := transporttest.Describe(t, "changed", f.img.Config, []transporttest.Layer{
				{Paths: []layers.Path{f.app}, Compression: c},
			}, layers.WithRoot(root))
			if err := os.WriteFile(filepath.Join(root, f.app.Path, "bin/app"), []byte("#!/bin/sh\necho tampered\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			ref, err := transport.NewReference(transporttest.Write(t, img), layers.WithRoot(root))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"docker://" + reg.Host + "/changed-" + c.Algorithm + ":v1", "oci:" + t.TempDir() + ":v1"} {
				dest, err := imagecopy.ParseReference(d)
				if err != nil {
					t.Fatal(err)
				}
				mark := reg.Mark()
				_, err = imagecopy.CopyImage(context.Background(), ref, dest, append(statelessOpts(t, reg), imagecopy.WithRegistryOptions(registry.WithRetry(2, 1)))...)
				var le *description.LayerError
				var mm *layers.MismatchError
				if !errors.As(err, &le) || !errors.As(err, &mm) || le.Index != 0 || !strings.Contains(err.Error(), f.app.Path) {
					t.Fatalf("%s: got %v, want layers[0]'s mismatch naming %s", d, err, f.app.Path)
				}
				t.Logf("%s: %v", d, err)
				for _, q := range reg.Requests(mark) {
					if q.IsManifestWrite() {
						t.Errorf("a manifest was written: %s", q)
					}
				}
			}
		})
	}
}

// TestCompressedToDaemon: the Docker daemon takes Docker manifests, whose
// layers are uncompressed or gzip; a zstd image is refused before any
// work, naming the layer and the way out.
func TestCompressedToDaemon(t *testing.T) {
	f := newFixture(t, "daemon", nil, transporttest.Zstd, nil)
	ref, err := transport.NewReference(f.path)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := imagecopy.ParseReference("docker-daemon:example/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = imagecopy.CopyImage(context.Background(), ref, dest,
		imagecopy.WithDestinationDaemonHost("unix://"+filepath.Join(t.TempDir(), "docker.sock")))
	if err == nil || !strings.Contains(err.Error(), "layers[1]") || !strings.Contains(err.Error(), "zstd") || !strings.Contains(err.Error(), "docker-archive:") {
		t.Fatalf("got %v, want a refusal naming layers[1], zstd and docker-archive:", err)
	}
}

// checkArchiveLayers checks that the Docker archive holds the image's
// layers as uncompressed tars: the files its manifest.json names hash to
// the diff IDs.
func checkArchiveLayers(t *testing.T, archive string, img *description.Image) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]digest.Digest{}
	var manifest []struct{ Layers []string }
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatal(err)
			}
			continue
		}
		d, err := digest.FromReader(tr)
		if err != nil {
			t.Fatal(err)
		}
		sums[h.Name] = d
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != len(img.Layers) {
		t.Fatalf("%s: manifest.json %+v, want one image of %d layers", archive, manifest, len(img.Layers))
	}
	for i, name := range manifest[0].Layers {
		if sums[name] != img.Layers[i].DiffID {
			t.Errorf("%s: layer %d (%s) is %s, want the uncompressed tar %s", archive, i, name, sums[name], img.Layers[i].DiffID)
		}
	}
}

// TestCompressedMounts: the blobs of an image with uncompressed, zstd and
// gzip layers, pushed to one repository, are mounted, not uploaded, into
// another (WithMountFrom) and into an additional tag's repository.
func TestCompressedMounts(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "mounts", compressions[2].c...)
	pushNix(t, f, "docker://"+reg.Host+"/mounts/home:v1", statelessOpts(t, reg)...)
	mark := reg.Mark()
	res := pushNix(t, f, "docker://"+reg.Host+"/mounts/other:v1", append(statelessOpts(t, reg),
		imagecopy.WithMountFrom("mounts/home"), imagecopy.WithAdditionalTags(reg.Host+"/mounts/mirror:v1"))...)
	mounts := map[string]int{}
	for _, q := range reg.Requests(mark) {
		switch {
		case q.Method == http.MethodPost && strings.Contains(q.Path, "mount=") && q.Status == http.StatusCreated:
			mounts[strings.Split(q.Path, "/")[3]]++
		case q.IsBlobWrite():
			t.Errorf("blob written, not mounted: %s", q)
		}
	}
	if want := len(f.img.Layers) + 1; mounts["other"] != want || mounts["mirror"] != want {
		t.Errorf("mounts by repository %v, want %d into each of other and mirror", mounts, want)
	}
	for _, repo := range []string{"other", "mirror"} {
		layout := filepath.Join(t.TempDir(), "oci")
		testenv.Skopeo(t, "copy", "--src-tls-verify=false", "--preserve-digests", "docker://"+reg.Host+"/mounts/"+repo+":v1", "oci:"+layout+":v1")
		if si := inspectRemote(t, "oci:"+layout+":v1"); si.Digest != res.Digest.String() {
			t.Errorf("%s: manifest %s, want %s", repo, si.Digest, res.Digest)
		}
		checkRootfs(t, f, unpackLayout(t, layout, "v1"))
	}
}
