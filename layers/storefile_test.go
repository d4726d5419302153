package layers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadStoreFile: a store path that is a regular file is read; one that
// is a symlink (even to a file in the store), a directory, a FIFO or over
// the limit is refused at once, naming it, and so is a path that is not
// exactly a store path.
func TestReadStoreFile(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, StoreDir)
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	name := func(s string) string { return StoreDir + "/" + strings.Repeat("0", 31) + s }
	write := func(p, data string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, link, dir, fifo, big := name("a-file.json"), name("b-link.json"), name("c-dir"), name("d-fifo"), name("f-big")
	write(file, `{"ok":true}`)
	write(big, strings.Repeat("x", 101))
	if err := os.Symlink(filepath.Base(file), filepath.Join(root, link)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, fifo), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadStoreFile(file, 100, WithRoot(root))
	if err != nil || string(b) != `{"ok":true}` {
		t.Fatalf("ReadStoreFile(%s) = %q, %v", file, b, err)
	}
	for _, c := range []struct {
		path, want string
		is         error
	}{
		{link, link + ": open ", ErrSymlink},
		{dir, dir + ": not a regular file (a directory)", nil},
		{fifo, fifo + ": not a regular file (a fifo)", nil},
		{big, big + ": larger than 100 bytes", nil},
		{file + "/x", "is not a store path", nil},
		{"/etc/passwd", "is not below /nix/store", nil},
	} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ReadStoreFile(c.path, 100, WithRoot(root)); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %v, want one containing %q", err, c.want)
				}
				if c.is != nil && !errors.Is(err, c.is) {
					t.Fatalf("%v is not %v", err, c.is)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadStoreFile(%s) still reading after 10s", c.path)
			}
		})
	}
}
