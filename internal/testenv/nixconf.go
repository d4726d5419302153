package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var nixConfOnce struct {
	sync.Once
	err error
}

// nixConfig makes every Nix command this test process runs, and every child
// that inherits its environment, blind to the machine's own Nix
// configuration: NIX_CONF_DIR and NIX_USER_CONF_FILES point at an empty
// nix.conf, and every setting the tests rely on is passed in NIX_CONFIG.
// Without build-users-group, Nix running as root on a machine without a
// nixbld group (a fresh Debian install) refuses to build. .ci/lib.sh's
// nixpush_nix_config does the same for the scripts.
func nixConfig(t testing.TB) {
	t.Helper()
	root := RepoRoot(t)
	nixConfOnce.Do(func() { nixConfOnce.err = setNixConfig(root) })
	if nixConfOnce.err != nil {
		t.Fatalf("setting up an isolated Nix configuration: %v", nixConfOnce.err)
	}
}

func setNixConfig(root string) error {
	dir := filepath.Join(root, ".work", "nix-conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "nix.conf")
	if err := writeAtomic(conf, nil); err != nil {
		return err
	}
	registry := filepath.Join(dir, "flake-registry.json")
	if err := writeAtomic(registry, []byte(`{"flakes":[],"version":2}`+"\n")); err != nil {
		return err
	}
	env := map[string]string{
		"NIX_CONF_DIR":        dir,
		"NIX_USER_CONF_FILES": conf,
		"NIX_CONFIG": "build-users-group =\n" +
			"sandbox = true\n" +
			"substituters =\n" +
			"experimental-features = nix-command flakes\n" +
			"flake-registry = " + registry + "\n",
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// writeAtomic writes b to name through a temporary file and a rename, so
// that test binaries running at once never read a half-written file.
func writeAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), name)
}
