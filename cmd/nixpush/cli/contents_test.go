package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// contentsExpr builds attr of a Nix file whose body sees np
// (nix/default.nix), ex (nix/examples), bb (busybox's store path) and
// rootfs, a root file system of busybox applets with no /etc.
func contentsExpr(t *testing.T, body, attr string, extra ...string) string {
	t.Helper()
	repo := testenv.RepoRoot(t)
	src := fmt.Sprintf(`{ nixpush, busybox }:
let
  np = import %q { inherit nixpush; };
  ex = import %q { inherit nixpush busybox; };
  bb = ex.busybox;
  rootfs = builtins.derivation {
    name = "applets";
    system = builtins.currentSystem;
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-e" "-c" ''
      ${bb}/bin/busybox mkdir -p $out/bin $out/tmp
      for a in sh id ls touch cat echo; do ${bb}/bin/busybox ln -s ${bb}/bin/busybox $out/bin/$a; done
    '' ];
  };
in
%s
`, filepath.Join(repo, "nix"), filepath.Join(repo, "nix", "examples"), body)
	f := filepath.Join(t.TempDir(), "test.nix")
	writeFile(t, f, src)
	args := append([]string{f, "-A", attr, "--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t)}, extra...)
	out, err := testenv.NixBuild(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pushAndPull pushes desc with nixpush to reg as name and copies it back
// with skopeo to an OCI layout, tag x.
func pushAndPull(t *testing.T, reg *testenv.Registry, desc, name string) string {
	t.Helper()
	image := reg.Host + "/" + name
	if r := run(t, buildNixpush(t), nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image); r.err != nil {
		t.Fatalf("copy: %v\n%s", r.err, r.stderr)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	testenv.Skopeo(t, "copy", "--src-tls-verify=false", "docker://"+image, "oci:"+layout+":x")
	return layout
}

// unpack unpacks the image x of an OCI layout with umoci and returns its
// root file system.
func unpack(t *testing.T, layout string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(testenv.Tool(t, "umoci"), "unpack", "--image", layout+":x", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	return filepath.Join(bundle, "rootfs")
}

func owner(t *testing.T, name string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// TestNixDatabaseImage builds an image with initializeNixDatabase (a
// buildLayer base below, copyToRoot, the config's closure), checks that
// the database is bit-reproducible (nix-build --check), pushes the image,
// pulls it back with skopeo, unpacks it with umoci, and has Debian's Nix
// read the unpacked root file system as a store: every store path of the
// image is valid with its closure, and nix-store --verify --check-contents
// re-hashes each one against the database. As nixUid (uid 1000, without
// root), Nix adds a path to a fresh copy of the store and verifies it. A
// file changed afterwards makes the root check fail.
func TestNixDatabaseImage(t *testing.T) {
	testenv.RequireNix(t)
	reg := testenv.StartRegistry(t)
	body := `rec {
  img = np.buildImage {
    name = "nixdb";
    tag = "v1";
    copyToRoot = [ rootfs ];
    layers = [ ex.base ];
    maxLayers = 2;
    config.Entrypoint = [ "${ex.hello}/bin/hello" ];
    initializeNixDatabase = true;
    nixUid = 1000;
    nixGid = 100;
  };
  hello = ex.hello;
}`
	desc := contentsExpr(t, body, "img")
	hello := contentsExpr(t, body, "hello")
	bb := strings.TrimSpace(mustNix(t, "nix-store", "-q", "--references", hello))
	db := contentsExpr(t, body, "img.nixDatabase")
	contentsExpr(t, body, "img.nixDatabase", "--check")
	contentsExpr(t, body, "img", "--check")
	img, err := description.ReadFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	if v := description.NeededVersion(img.Layers); v != 1 || len(img.Annotations) > 0 || img.BaseHistory != nil {
		t.Errorf("layers of description version %d: a Nix database needs no new description feature, want 1", v)
	}

	layout := pushAndPull(t, reg, desc, "nixdb:v1")
	root := unpack(t, layout)
	store := "local?root=" + root

	got := strings.Fields(mustNix(t, "nix", "path-info", "--store", store, "-r", hello))
	want := []string{bb, hello}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("nix path-info -r %s in the image: %v, want %v", hello, got, want)
	}
	all := strings.Fields(mustNix(t, "nix", "path-info", "--store", store, "--all"))
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Errorf("nix path-info --all in the image: %v, want exactly the image's store paths %v", all, want)
	}
	for _, p := range want {
		if target, err := os.Readlink(filepath.Join(root, "nix/var/nix/gcroots/docker", filepath.Base(p))); err != nil || target != p {
			t.Errorf("gcroot of %s: %q, %v", p, target, err)
		}
	}
	if _, err := testenv.Nix(t, "nix-store", "--verify", "--check-contents", "--store", store); err != nil {
		t.Fatalf("nix-store --verify --check-contents of the unpacked image: %v", err)
	}

	// Owners: nixUid/nixGid own /nix, the database and the image's own
	// store paths; the buildLayer base keeps its root-owned busybox.
	for _, c := range []struct {
		path     string
		uid, gid uint32
	}{
		{"nix", 1000, 100},
		{"nix/store", 1000, 100},
		{"nix/var/nix/db", 1000, 100},
		{"nix/var/nix/db/db.sqlite", 1000, 100},
		{hello[1:], 1000, 100},
		{hello[1:] + "/bin/hello", 1000, 100},
		{bb[1:], 0, 0},
	} {
		if uid, gid := owner(t, filepath.Join(root, c.path)); uid != c.uid || gid != c.gid {
			t.Errorf("/%s: owned by %d:%d, want %d:%d", c.path, uid, gid, c.uid, c.gid)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "nix/var/nix/db/db.sqlite")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("db.sqlite: %v, %v; want mode 0644", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, db[1:])); err == nil {
		t.Errorf("the database's own store path %s is in the image's store; it should only be copied to /", db)
	}

	// nixUid can use the store without root, in a second copy that Nix
	// has not touched as root: add a path to it as uid 1000 (the database
	// is written, the store directory too), then verify it as that user.
	if os.Geteuid() == 0 {
		asNixUser(t, unpack(t, layout))
	}

	// The check can fail: change a registered file.
	f := filepath.Join(root, hello[1:], "bin", "hello")
	if err := os.Chmod(f, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = testenv.Nix(t, "nix-store", "--verify", "--check-contents", "--store", store)
	if err == nil || !strings.Contains(err.Error(), "was modified") {
		t.Errorf("nix-store --verify --check-contents on a changed store path: %v, want it to name the path as modified", err)
	}
}

// TestNixDatabaseOnNixpushBase: an image with initializeNixDatabase on a
// nixpush base (fromImage) that has a database of its own registers the
// base's store paths as well as its own, since its layers stack on the
// base's and its database hides the base's. Pushed, pulled by skopeo and
// unpacked by umoci, Debian's Nix finds exactly the store paths of the
// description's layers valid, the base's among them, and their contents
// intact.
func TestNixDatabaseOnNixpushBase(t *testing.T) {
	testenv.RequireNix(t)
	reg := testenv.StartRegistry(t)
	body := `rec {
  hello = ex.hello;
  greeting = builtins.derivation {
    name = "greeting";
    system = builtins.currentSystem;
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" "echo hello > $out" ];
  };
  base = np.buildImage {
    name = "nixdb-base";
    copyToRoot = [ rootfs ];
    config.Entrypoint = [ "${hello}/bin/hello" ];
    initializeNixDatabase = true;
  };
  img = np.buildImage {
    name = "nixdb-derived";
    tag = "v1";
    fromImage = base;
    config.Env = [ "GREETING=${greeting}" ];
    initializeNixDatabase = true;
  };
}`
	desc := contentsExpr(t, body, "img")
	hello := contentsExpr(t, body, "hello")
	greeting := contentsExpr(t, body, "greeting")
	contentsExpr(t, body, "img.nixDatabase", "--check")
	img, err := description.ReadFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range img.Layers {
		for _, p := range l.Paths {
			if p.Rewrite == "" {
				want = append(want, p.Path)
			}
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	for _, p := range []string{hello, greeting} {
		if !slices.Contains(want, p) {
			t.Fatalf("the image's layers do not hold %s: %v", p, want)
		}
	}

	root := unpack(t, pushAndPull(t, reg, desc, "nixdb-derived:v1"))
	store := "local?root=" + root
	all := strings.Fields(mustNix(t, "nix", "path-info", "--store", store, "--all"))
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Errorf("nix path-info --all in the image: %v, want the store paths of its layers, the base's included: %v", all, want)
	}
	if _, err := testenv.Nix(t, "nix-store", "--verify", "--check-contents", "--store", store); err != nil {
		t.Fatalf("nix-store --verify --check-contents of the unpacked image: %v", err)
	}
}

// asNixUser runs Nix as uid 1000, gid 100 (the image's nixUid and
// nixGid) on the unpacked image's store: it adds a file and verifies the
// store, which needs /nix/store, /nix/var/nix and the database writable by
// that user.
func asNixUser(t *testing.T, root string) {
	t.Helper()
	store := "local?root=" + root
	// The user must reach the root file system below the test's
	// temporary directories, which only root may enter.
	for d := filepath.Dir(root); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home, err := os.MkdirTemp("", "nixuser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	file := filepath.Join(home, "added-by-nixuid")
	writeFile(t, file, "added by uid 1000\n")
	for _, p := range []string{home, file} {
		if err := os.Chown(p, 1000, 100); err != nil {
			t.Fatal(err)
		}
	}
	as := []string{"--reuid", "1000", "--regid", "100", "--clear-groups", "env", "HOME=" + home}
	added := mustNix(t, testenv.Tool(t, "setpriv"), append(as, "nix-store", "--store", store, "--add", file)...)
	if !strings.HasSuffix(added, "-added-by-nixuid") {
		t.Fatalf("nix-store --add as uid 1000 printed %q", added)
	}
	mustNix(t, testenv.Tool(t, "setpriv"), append(as, "nix-store", "--store", store, "--verify", "--check-contents")...)
	if uid, _ := owner(t, filepath.Join(root, added)); uid != 1000 {
		t.Errorf("%s added by uid 1000 is owned by %d", added, uid)
	}
	if _, err := testenv.Nix(t, "nix", "path-info", "--store", store, added); err != nil {
		t.Errorf("the path added as uid 1000 is not valid: %v", err)
	}
}

func mustNix(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := testenv.Nix(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestUsersWithPodman gives an image a user with np.users and runs it as
// that user (config.User = "app") with podman: id names the user and its
// groups, the home directory is the user's and writable, and root's
// entries are there too.
func TestUsersWithPodman(t *testing.T) {
	testenv.RequireNix(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("podman is optional and not installed: %v", err)
	}
	reg := testenv.StartRegistry(t)
	desc := contentsExpr(t, `{
  img = np.buildImage {
    name = "users";
    tag = "v1";
    copyToRoot = [
      rootfs
      (np.users {
        users.app = { uid = 1000; groups = [ "wheel" ]; shell = "/bin/sh"; };
        groups.wheel.gid = 10;
      })
    ];
    config = {
      User = "app";
      Env = [ "PATH=/bin" ];
      Entrypoint = [ "/bin/sh" "-c" "id; ls -lnd $HOME; touch $HOME/x && echo home-writable; cat /etc/passwd /etc/group; ls -ln /etc/shadow" ];
    };
  };
}`, "img")
	image := reg.Host + "/users:v1"
	if r := run(t, buildNixpush(t), nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image); r.err != nil {
		t.Fatalf("copy: %v\n%s", r.err, r.stderr)
	}
	got := testenv.PodmanRun(t, testenv.PodmanEnv(t), "--rm", "--tls-verify=false", image)
	t.Logf("podman run %s:\n%s", image, got)
	for _, want := range []string{
		`uid=1000\(app\) gid=1000\(app\) groups=10\(wheel\),1000\(app\)\n`,
		`\ndrwxr-xr-x\s+\d+\s+1000\s+1000\s.*\s/home/app\n`, // ls -lnd $HOME
		`\nhome-writable\n`,
		`\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n`,
		`\nroot:x:0:\nwheel:x:10:app\napp:x:1000:\n`,
		`\n-rw-r-----\s+\d+\s+0\s+0\s.*\s/etc/shadow\n`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("podman run %s: output does not match %q", image, want)
		}
	}
}
