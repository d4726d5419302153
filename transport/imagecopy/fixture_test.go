package imagecopy_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io/fs"
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

// fixture is a three-layer image: a library, an application with its own
// owner and mode, and a copyToRoot layer with /etc and a world-writable
// /tmp.
type fixture struct {
	img     *description.Image
	path    string // the description file
	lib     layers.Path
	app     layers.Path
	root    layers.Path
	appPerm layers.Perm
}

func intp(i int) *int { return &i }

// newFixture describes the fixture's three layers uncompressed, or each
// compressed as c says: one compression for every layer, or one per layer
// (nil: uncompressed).
func newFixture(t *testing.T, name string, c ...*layers.Compression) *fixture {
	t.Helper()
	cs := make([]*layers.Compression, 3)
	switch len(c) {
	case 0:
	case 1:
		cs = []*layers.Compression{c[0], c[0], c[0]}
	case 3:
		cs = c
	default:
		t.Fatalf("newFixture: %d compressions for 3 layers", len(c))
	}
	f := &fixture{}
	f.lib = transporttest.AddStorePath(t, "libnp-fixture", map[string]transporttest.File{
		"lib/libnp.so":   {Data: strings.Repeat("library bytes\n", 20000)},
		"lib/libnp.so.1": {Link: "libnp.so"},
		"share/empty":    {Dir: true},
	})
	f.app = transporttest.AddStorePath(t, "app-fixture", map[string]transporttest.File{
		"bin/app":          {Data: "#!/bin/sh\necho hello from the fixture\n", Exec: true},
		"share/doc/README": {Data: "uses " + f.lib.Path + "\n"},
	})
	f.root = transporttest.AddStorePath(t, "root-fixture", map[string]transporttest.File{
		"etc/passwd": {Data: "root:x:0:0:root:/root:/bin/sh\n"},
		"tmp":        {Dir: true},
		"bin/app":    {Link: f.app.Path + "/bin/app"},
	})
	f.appPerm = layers.Perm{Path: f.app.Path, Regex: ".*/bin/app", Mode: "0750", UID: intp(1000), GID: intp(100)}
	root := f.root
	root.Rewrite = "/"
	f.img = transporttest.Describe(t, name, ocispec.ImageConfig{
		Entrypoint: []string{f.app.Path + "/bin/app"},
		Env:        []string{"PATH=/bin"},
		Labels:     map[string]string{"b": "2", "a": "1"},
	}, []transporttest.Layer{
		{Paths: []layers.Path{f.lib}, Compression: cs[0]},
		{Paths: []layers.Path{f.app}, Perms: []layers.Perm{f.appPerm}, Compression: cs[1]},
		{Paths: []layers.Path{root}, Perms: []layers.Perm{{Path: f.root.Path, Regex: "/tmp", Mode: "1777"}}, Compression: cs[2]},
	})
	f.path = transporttest.Write(t, f.img)
	return f
}

// statelessOpts are the options of a fresh CI runner: an empty blob-info
// cache, and an empty HOME so no user configuration or cache is found.
func statelessOpts(t *testing.T, reg *testenv.Registry) []imagecopy.Option {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	opts := []imagecopy.Option{imagecopy.WithRegistryOptions(registry.WithBlobInfoCacheDir(t.TempDir()))}
	if !reg.TLS {
		opts = append(opts, imagecopy.WithRegistryOptions(registry.WithTLSVerify(false)))
	}
	return opts
}

func pushNix(t *testing.T, f *fixture, dest string, opts ...imagecopy.Option) *imagecopy.Result {
	t.Helper()
	ref, err := transport.NewReference(f.path)
	if err != nil {
		t.Fatal(err)
	}
	destRef, err := imagecopy.ParseReference(dest)
	if err != nil {
		t.Fatal(err)
	}
	res, err := imagecopy.CopyImage(context.Background(), ref, destRef, opts...)
	if err != nil {
		t.Fatalf("pushing %s to %s: %v", f.path, dest, err)
	}
	return res
}

type skopeoInspect struct {
	Digest       string
	Layers       []string
	Architecture string
	Os           string
}

func inspectRemote(t *testing.T, ref string, extra ...string) skopeoInspect {
	t.Helper()
	var si skopeoInspect
	args := append([]string{"inspect"}, extra...)
	if err := json.Unmarshal(testenv.Skopeo(t, append(args, ref)...), &si); err != nil {
		t.Fatal(err)
	}
	return si
}

// checkRootfs compares an unpacked root file system with the fixture: the
// store paths byte for byte, with the described modes and owners, and the
// copyToRoot content at /.
func checkRootfs(t *testing.T, f *fixture, rootfs string) {
	t.Helper()
	// Exactly the described store paths.
	entries, err := os.ReadDir(filepath.Join(rootfs, "nix/store"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, "/nix/store/"+e.Name())
	}
	want := []string{f.lib.Path, f.app.Path}
	if strings.Join(sorted(got), " ") != strings.Join(sorted(want), " ") {
		t.Errorf("rootfs /nix/store holds %v, want %v", got, want)
	}
	compareTree(t, f.lib.Path, filepath.Join(rootfs, f.lib.Path), nil, false)
	compareTree(t, f.app.Path, filepath.Join(rootfs, f.app.Path), map[string]ownerMode{
		"bin/app": {mode: 0o750, uid: 1000, gid: 100},
	}, false)
	compareTree(t, f.root.Path, rootfs, map[string]ownerMode{
		"tmp": {mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}, true)
}

type ownerMode struct {
	mode     fs.FileMode
	uid, gid int
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// compareTree checks that every entry of the store path src is in dst with
// the same type, bytes or target, and the mode and owner of the tar format
// (or of override, for perms rules).
func compareTree(t *testing.T, src, dst string, override map[string]ownerMode, skipTop bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		si, err := os.Lstat(p)
		if err != nil {
			return err
		}
		di, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: missing from the image: %v", rel, err)
			return nil
		}
		want := ownerMode{}
		switch {
		case si.Mode()&fs.ModeSymlink != 0:
			want.mode = fs.ModeSymlink | 0o777
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(q)
			if a != b {
				t.Errorf("%s: symlink to %q, want %q", rel, b, a)
			}
		case si.IsDir():
			want.mode = fs.ModeDir | 0o555
		default:
			want.mode = 0o444
			if si.Mode()&0o100 != 0 {
				want.mode = 0o555
			}
			a, _ := os.ReadFile(p)
			b, _ := os.ReadFile(q)
			if string(a) != string(b) {
				t.Errorf("%s: contents differ from %s", rel, p)
			}
		}
		if o, ok := override[rel]; ok {
			want = o
		}
		if rel == "." && skipTop {
			return nil // the image's root directory, not the store path's
		}
		if di.Mode() != want.mode {
			t.Errorf("%s: mode %v, want %v", rel, di.Mode(), want.mode)
		}
		if uid, gid := owner(di); uid != want.uid || gid != want.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, uid, gid, want.uid, want.gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// unpackLayout unpacks the image dir:tag of an OCI layout with umoci and
// returns its root file system, after checking each layer against its
// config diff ID: decompressed by the zstd or gzip program, its sha256 must
// be the diff ID. umoci 0.4.7 cannot read zstd layers: an image with any is
// first recompressed to gzip by skopeo (containers/image's zstd decoder,
// which podman uses too).
func unpackLayout(t *testing.T, dir, tag string) string {
	t.Helper()
	var index ocispec.Index
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	var man ocispec.Manifest
	for _, d := range index.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == tag {
			readJSON(t, blobPath(dir, d.Digest), &man)
		}
	}
	if len(man.Layers) == 0 {
		t.Fatalf("%s: no image tagged %s", dir, tag)
	}
	var cfg ocispec.Image
	readJSON(t, blobPath(dir, man.Config.Digest), &cfg)
	if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		t.Fatalf("%s: %d diff IDs for %d layers", dir, len(cfg.RootFS.DiffIDs), len(man.Layers))
	}
	zstd := false
	for i, l := range man.Layers {
		var args []string
		switch l.MediaType {
		case ocispec.MediaTypeImageLayerZstd:
			zstd = true
			args = []string{testenv.Tool(t, "zstd"), "-dc"}
		case ocispec.MediaTypeImageLayerGzip:
			args = []string{testenv.Tool(t, "gzip"), "-dc"}
		case ocispec.MediaTypeImageLayer:
			args = []string{testenv.Tool(t, "cat")}
		default:
			t.Fatalf("layer %d: media type %s", i, l.MediaType)
		}
		cmd := exec.Command(args[0], append(args[1:], blobPath(dir, l.Digest))...)
		h := sha256.New()
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = h, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("layer %d: %v: %v\n%s", i, args, err, stderr.String())
		}
		if got := digest.NewDigest(digest.SHA256, h); got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d (%s): %s gives a tar of %s, the config's diff ID is %s", i, l.MediaType, args[0], got, cfg.RootFS.DiffIDs[i])
		}
	}
	if zstd {
		gz := filepath.Join(t.TempDir(), "gzip")
		testenv.Skopeo(t, "copy", "--dest-compress-format", "gzip", "oci:"+dir+":"+tag, "oci:"+gz+":"+tag)
		dir = gz
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(testenv.Tool(t, "umoci"), "unpack", "--image", dir+":"+tag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	return filepath.Join(bundle, "rootfs")
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
