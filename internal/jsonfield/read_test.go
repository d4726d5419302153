package jsonfield

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "ok.json")
	if err := os.WriteFile(regular, []byte(`{"name":"a"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "result")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	exact := filepath.Join(dir, "exact.json")
	if err := os.WriteFile(exact, []byte(`{"name":"a"}`+strings.Repeat(" ", 100-12)), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(strings.Repeat(" ", 101)), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, file string
		is         error  // nil: no error
		want       string // in the error, besides the file name
	}{
		{"regular file", regular, nil, ""},
		{"symlink to a regular file", link, nil, ""},
		{"exactly the limit", exact, nil, ""},
		{"over the limit", big, ErrTooLarge, "larger than 100 bytes"},
		{"device that never ends", "/dev/zero", ErrNotRegular, "a character device"},
		{"FIFO without a writer", fifo, ErrNotRegular, "a FIFO"},
		{"directory", dir, ErrNotRegular, "a directory"},
		{"missing", filepath.Join(dir, "nope.json"), fs.ErrNotExist, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			var b []byte
			var err error
			go func() {
				defer close(done)
				b, err = ReadFile(c.file, 100)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadFile(%s) still reading after 10s", c.file)
			}
			if c.is == nil {
				if err != nil || strings.TrimSpace(string(b)) != `{"name":"a"}` {
					t.Fatalf("ReadFile: %q, %v", b, err)
				}
				return
			}
			if !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.file) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %s and say %q", err, c.file, c.want)
			}
		})
	}
}

// TestReadFileCapsWhatItReads: a file that grows past the limit after the
// check (here /proc files, which report size 0) is still capped.
func TestReadFileCapsWhatItReads(t *testing.T) {
	const name = "/proc/self/maps"
	fi, err := os.Stat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Skipf("%s is not a regular file reporting size 0 here", name)
	}
	if _, err := ReadFile(name, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}
