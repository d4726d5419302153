package layers_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nixpush/nixpush/layers"
)

// TestReadStoreFile: a store path that is a regular file is read; anything
// else (a symlink, even to a file in the store, a directory, a FIFO, a
// path inside a store path, a file over the limit) is refused naming it,
// and a FIFO without blocking.
func TestReadStoreFile(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, layers.StoreDir)
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	const hash = "0000000000000000000000000000000"
	file := layers.StoreDir + "/" + hash + "a-sbom"
	if err := os.WriteFile(filepath.Join(root, file), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := layers.StoreDir + "/" + hash + "b-link"
	if err := os.Symlink(filepath.Join(root, file), filepath.Join(root, link)); err != nil {
		t.Fatal(err)
	}
	dir := layers.StoreDir + "/" + hash + "c-dir"
	if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := layers.StoreDir + "/" + hash + "d-fifo"
	if err := syscall.Mkfifo(filepath.Join(root, fifo), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := layers.ReadStoreFile(file, 3, layers.WithRoot(root))
	if err != nil || string(b) != "{}\n" {
		t.Fatalf("ReadStoreFile(%s) = %q, %v", file, b, err)
	}
	for _, c := range []struct {
		path string
		max  int64
		want string
	}{
		{link, 100, "symlink"},
		{dir, 100, "directory"},
		{fifo, 100, "not a regular file"},
		{file + "/x", 100, "not a store path"},
		{file, 2, "more than the 2"},
		{layers.StoreDir + "/" + hash + "f-missing", 100, "no such file"},
	} {
		_, err := layers.ReadStoreFile(c.path, c.max, layers.WithRoot(root))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), strings.TrimSuffix(c.path, "/x")) {
			t.Errorf("ReadStoreFile(%s): %v; want an error naming it, saying %q", c.path, err, c.want)
		}
	}
}
