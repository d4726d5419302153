package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The canary is a secret outside the store root: no layer, NAR hash or
// error may ever contain it, and nothing beneath it may ever be opened.
const canary = "CANARY-host-secret-7f3a"

// Store paths of the confinement fixture (below root/nix/store).
const (
	cfGood     = StoreDir + "/0000000000000000000000000000000a-good"
	cfLink     = StoreDir + "/0000000000000000000000000000000b-etclink" // symlink to the canary directory
	cfInner    = StoreDir + "/0000000000000000000000000000000c-innerlink"
	cfRelative = StoreDir + "/0000000000000000000000000000000d-rel"
)

// confineFixture lays out a store root and, beside it, a canary directory,
// with every way a store tree can point out of itself: a store path that is
// a symlink to the outside, a symlinked directory inside a store path,
// relative symlinks climbing out with "..". It returns the root and the
// canary directory.
func confineFixture(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	store := filepath.Join(root, StoreDir)
	for _, d := range []string{store, outside, filepath.Join(outside, "sub"), filepath.Join(root, cfGood, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(outside, "shadow"):       canary + "\n",
		filepath.Join(outside, "sub", "key"):   canary + " key\n",
		filepath.Join(root, cfGood, "dir/f"):   "good\n",
		filepath.Join(root, cfGood, "top"):     "top\n",
		filepath.Join(root, cfGood, "a-first"): "written before dir/\n",
		filepath.Join(root, "nix", "secret"):   canary + " beside the store\n",
		filepath.Join(store, ".links-secret"):  canary + " in the store dir\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		filepath.Join(root, cfLink):                                  outside,
		filepath.Join(root, cfGood, "out"):                           outside,
		filepath.Join(root, cfGood, "up"):                            "../../../../outside/shadow",
		filepath.Join(root, cfRelative):                              "../../../outside",
		filepath.Join(store, "0000000000000000000000000000000e-dot"): ".",
	}
	if err := os.MkdirAll(filepath.Join(root, cfInner), 0o755); err != nil {
		t.Fatal(err)
	}
	links[filepath.Join(root, cfInner, "etc")] = outside
	for p, target := range links {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// watchOpens fails the test for every file or directory opened beneath the
// store that is not below root's store directory.
func watchOpens(t testing.TB, root string) (stop func()) {
	t.Helper()
	store, err := filepath.EvalSymlinks(filepath.Join(root, StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	openHook = func(f *os.File) {
		real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !strings.HasPrefix(real, store+"/") {
			bad = append(bad, real)
		}
	}
	return func() {
		openHook = nil
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("opened outside the store root: %q", bad)
		}
	}
}

// TestStorePathSpellings: only the exact spelling of a store path is one.
// Each of these named a host directory through a store path's symlink or a
// "..", and passed validation before.
func TestStorePathSpellings(t *testing.T) {
	for _, p := range []string{
		cfLink + "/", cfLink + "/.", cfLink + "//", cfLink + "/shadow", cfLink + "/../" + filepath.Base(cfGood),
		cfGood + "/..", StoreDir + "//0000000000000000000000000000000a-good", "/nix/store/../store/0000000000000000000000000000000a-good",
		StoreDir + "/0000000000000000000000000000000a-" + strings.Repeat("x", 212),
		StoreDir + "/0000000000000000000000000000000a-.hidden", StoreDir + "/0000000000000000000000000000000a-",
		StoreDir + "/000000000000000000000000000000ea-good", // 'e' is not nixbase32
		"nix/store/0000000000000000000000000000000a-good", "/nix/store", "",
	} {
		if err := ValidateStorePath(p); err == nil {
			t.Errorf("%q passes as a store path", p)
		} else if p != "" && !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Errorf("%q: error %q does not name it", p, err)
		}
	}
	for _, p := range []string{cfGood, cfLink, StoreDir + "/0000000000000000000000000000000a-" + strings.Repeat("x", 211), StoreDir + "/0000000000000000000000000000000a-a.b+c_d?e=f-1.0"} {
		if err := ValidateStorePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
}

// TestConfinement writes, hashes, streams and NAR-hashes layers that try
// to reach the canary: each is refused naming the path, or written without
// following any symlink (a symlink is a symlink entry), and nothing outside
// the root is opened.
func TestConfinement(t *testing.T) { bothOpeners(t, testConfinement) }

func testConfinement(t *testing.T) {
	root, _ := confineFixture(t)
	defer watchOpens(t, root)()
	ctx := context.Background()

	refused := []string{cfLink + "/", cfLink + "/.", cfLink + "//", cfGood + "/../" + filepath.Base(cfLink), cfLink + "/shadow"}
	for _, p := range refused {
		for _, rewrite := range []string{"", "/"} {
			spec := Spec{Paths: []Path{{Path: p, Rewrite: rewrite}}}
			var out bytes.Buffer
			err := Write(ctx, &out, spec, WithRoot(root))
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("Write %q (rewrite %q): error %v does not refuse it by name", p, rewrite, err)
			}
			if bytes.Contains(out.Bytes(), []byte(canary)) {
				t.Errorf("Write %q: canary in the output", p)
			}
			if _, err := Changed(ctx, spec.Paths, WithRoot(root)); err == nil {
				t.Errorf("Changed %q: no error", p)
			}
		}
	}

	// Symlinks, wherever they are, are written as symlinks.
	spec := Spec{Paths: []Path{{Path: cfGood}, {Path: cfLink}, {Path: cfInner}, {Path: cfRelative}}}
	var out bytes.Buffer
	if err := Write(ctx, &out, spec, WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte(canary)) {
		t.Fatal("canary in a layer of symlinks")
	}
	links := tarSymlinks(t, out.Bytes())
	for name, target := range map[string]string{
		"nix/store/" + filepath.Base(cfLink):           "outside",
		"nix/store/" + filepath.Base(cfGood) + "/out":  "outside",
		"nix/store/" + filepath.Base(cfInner) + "/etc": "outside",
		"nix/store/" + filepath.Base(cfRelative):       "../../../outside",
	} {
		if got, ok := links[name]; !ok || !strings.HasSuffix(got, target) {
			t.Errorf("%s: symlink %q (present %v), want one to …%s", name, got, ok, target)
		}
	}
	// A copyToRoot of a store path that is a symlink is refused.
	err := Write(ctx, io.Discard, Spec{Paths: []Path{{Path: cfLink, Rewrite: "/"}}}, WithRoot(root))
	if err == nil || !strings.Contains(err.Error(), cfLink) {
		t.Errorf("rewrite of a symlinked store path: %v", err)
	}
}

// TestSwappedDirectory: a directory inside a store path replaced by a
// symlink to the outside after the layer was hashed is streamed as that
// symlink, so the stream fails its digest naming the store path, and the
// outside is never read.
func TestSwappedDirectory(t *testing.T) { bothOpeners(t, testSwappedDirectory) }

func testSwappedDirectory(t *testing.T) {
	root, outside := confineFixture(t)
	defer watchOpens(t, root)()
	ctx := context.Background()
	good := filepath.Join(root, cfGood)
	narHash := narHashOf(t, good)
	spec := Spec{Paths: []Path{{Path: cfGood, NarHash: narHash}}}
	want, size, err := Digest(ctx, spec, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(good, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(good, "dir")); err != nil {
		t.Fatal(err)
	}
	for name, rc := range map[string]io.ReadCloser{
		"Open":   Open(ctx, spec, want, size, WithRoot(root)),
		"Stream": Stream(ctx, spec, want, size, WithRoot(root)),
	} {
		b, err := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s: canary streamed", name)
		}
		var me *MismatchError
		if name == "Open" && (!errors.As(err, &me) || len(me.Changed) != 1 || me.Changed[0].Path != cfGood) {
			t.Errorf("%s: %v, want a mismatch naming %s", name, err, cfGood)
		}
	}
	if err := Verify(ctx, spec, want, size, WithRoot(root)); err == nil || !strings.Contains(err.Error(), cfGood) {
		t.Errorf("Verify: %v, want a mismatch naming %s", err, cfGood)
	}
}

// tarSymlinks returns the symlink entries of a tar, name → target.
func tarSymlinks(t *testing.T, b []byte) map[string]string {
	t.Helper()
	links := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return links
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeSymlink {
			links[hdr.Name] = hdr.Linkname
		}
	}
}

// bothOpeners runs test with openat2, and again with the openat fallback
// that kernels before 5.6 get.
func bothOpeners(t *testing.T, test func(t *testing.T)) {
	openat2.Do(func() {})
	have := !openat2.missing
	t.Run("openat2", func(t *testing.T) {
		if !have {
			t.Skip("this kernel has no openat2")
		}
		test(t)
	})
	t.Run("openat", func(t *testing.T) {
		openat2.missing = true
		defer func() { openat2.missing = !have }()
		test(t)
	})
}

// TestSwappedWhileStreaming swaps a directory of a store path for a symlink
// to the outside after the walk has listed it and before it opens it (the
// race that a path-based walk loses): the walk refuses to open it, and
// nothing outside is opened or streamed.
func TestSwappedWhileStreaming(t *testing.T) { bothOpeners(t, testSwappedWhileStreaming) }

func testSwappedWhileStreaming(t *testing.T) {
	root, outside := confineFixture(t)
	good := filepath.Join(root, cfGood)
	stop := watchOpens(t, root)
	check := openHook
	var once sync.Once
	openHook = func(f *os.File) {
		check(f)
		if filepath.Base(f.Name()) == "a-first" { // listed, written before "dir/"
			once.Do(func() {
				if err := os.Rename(filepath.Join(good, "dir"), filepath.Join(good, "moved")); err != nil {
					t.Error(err)
				}
				if err := os.Symlink(outside, filepath.Join(good, "dir")); err != nil {
					t.Error(err)
				}
			})
		}
	}
	defer stop()
	var out bytes.Buffer
	err := Write(context.Background(), &out, Spec{Paths: []Path{{Path: cfGood}}}, WithRoot(root))
	if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), cfGood) {
		t.Errorf("Write: %v, want an error saying a directory of %s is now a symlink", err, cfGood)
	}
	if bytes.Contains(out.Bytes(), []byte(canary)) {
		t.Error("canary streamed")
	}
}
