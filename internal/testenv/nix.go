package testenv

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RequireNix skips the test unless nix-build, nix-store and
// nix-instantiate are on PATH (fails under NIXPUSH_REQUIRE_TOOLS=1).
func RequireNix(t testing.TB) {
	t.Helper()
	for _, name := range []string{"nix-build", "nix-store", "nix-instantiate"} {
		Tool(t, name)
	}
}

// RepoRoot returns the directory holding go.mod, found from the working
// directory upwards.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, ok := repoRoot()
	if !ok {
		t.Fatal("no go.mod above the working directory")
	}
	return dir
}

var nixpushOnce struct {
	sync.Once
	dir string
	err error
}

// NixpushDir builds cmd/nixpush once per test binary, statically
// (CGO_ENABLED=0, -trimpath, so the same sources give the same bytes and
// the same store path), and returns a directory holding bin/nixpush: what
// nix/default.nix takes as nixpush.
//
// The directory is the repository's .work/nixpush-bin, shared by the test
// binaries of one `go test ./...`: each builds into a temporary file
// and renames it over bin/nixpush, so a reader sees a whole binary,
// and every build of the same sources is the same file. One directory,
// not one per run, so that neither /tmp nor the store fills with copies.
func NixpushDir(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	nixpushOnce.Do(func() {
		nixpushOnce.dir, nixpushOnce.err = buildNixpush(root)
	})
	if nixpushOnce.err != nil {
		t.Fatal(nixpushOnce.err)
	}
	return nixpushOnce.dir
}

func buildNixpush(root string) (string, error) {
	dir := filepath.Join(root, ".work", "nixpush-bin")
	err := replaceExecutable(filepath.Join(dir, "bin", "nixpush"), func(name string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "containers_image_openpgp", "-o", name, "./cmd/nixpush")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/nixpush: %w\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return dir, nil
}

// BusyboxDir returns a directory holding bin/busybox, copied from the
// busybox on PATH (which must be static to run in the Nix sandbox), or
// skips the test (fails under NIXPUSH_REQUIRE_TOOLS=1). Like NixpushDir
// it is one directory, the repository's .work/busybox, written by
// renaming a whole copy over, so that its store path stays the same.
func BusyboxDir(t testing.TB) string {
	t.Helper()
	src := Tool(t, "busybox")
	if err := checkStatic(src); err != nil {
		t.Fatalf("%v (install busybox-static)", err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(RepoRoot(t), ".work", "busybox")
	err = replaceExecutable(filepath.Join(dir, "bin", "busybox"), func(name string) error {
		return os.WriteFile(name, b, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// replaceExecutable makes name (its directories created) an executable
// that write puts in a temporary file, renamed over name when whole. The
// temporary file is two levels up, outside name's directory tree, which
// Nix may be copying into the store meanwhile.
func replaceExecutable(name string, write func(tmp string) error) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(filepath.Dir(filepath.Dir(name))), "."+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	if err := write(f.Name()); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o755); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// checkStatic fails for a dynamically linked executable: the Nix sandbox
// has no /lib to load it from.
func checkStatic(name string) error {
	f, err := elf.Open(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run in the Nix sandbox", name)
		}
	}
	return nil
}

// Nix runs a Nix command and returns its trimmed standard output; on
// failure the error holds the command and its standard error.
func Nix(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	nixConfig(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// NixBuild runs nix-build --no-out-link with args and returns the output
// path it prints (the last line, for a single attribute).
func NixBuild(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := Nix(t, "nix-build", append([]string{"--no-out-link"}, args...)...)
	if err != nil {
		return "", err
	}
	lines := strings.Split(out, "\n")
	return lines[len(lines)-1], nil
}
