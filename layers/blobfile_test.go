package layers

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestOpenBlob: a blob file is read beneath its store path without
// following a symlink, and its bytes are checked as they stream.
func TestOpenBlob(t *testing.T) {
	root, _ := confineFixture(t)
	defer watchOpens(t, root)()
	content := "good\n"
	want := digest.FromString(content)
	ctx := context.Background()

	rc, err := OpenBlob(cfGood, "dir/f", want, int64(len(content)), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != content {
		t.Fatalf("read %q, %v; want %q", got, err, content)
	}
	if err := VerifyBlob(ctx, cfGood, "dir/f", want, int64(len(content)), WithRoot(root)); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, path, file string
		want             string
		is               error
	}{
		{"symlinked store path", cfLink, "shadow", "", ErrSymlink},
		{"symlinked directory inside", cfInner, "etc/shadow", "", ErrSymlink},
		{"symlink as the file", cfGood, "up", "", nil},
		{"symlink to a directory", cfGood, "out/shadow", "", ErrSymlink},
		{"a directory", cfGood, "dir", "not a regular file", nil},
		{"dot-dot", cfGood, "../secret", "not a clean relative path", nil},
		{"absolute", cfGood, "/etc/passwd", "not a clean relative path", nil},
		{"inside a store path as path", cfGood + "/dir", "f", "is not a store path", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := OpenFile(c.path, c.file, WithRoot(root))
			if err == nil {
				t.Fatal("opened")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v lacks %q", err, c.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error leaks the canary: %v", err)
			}
		})
	}

	// Changed contents, same size: the last Read says so.
	if err := os.WriteFile(filepath.Join(root, cfGood, "dir", "f"), []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err = OpenBlob(cfGood, "dir/f", want, int64(len(content)), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	var mm *FileMismatchError
	if !errors.As(err, &mm) || mm.Want != want || mm.Got != digest.FromString("evil\n") || !strings.Contains(err.Error(), cfGood+"/dir/f") {
		t.Errorf("changed blob: %v; want a *FileMismatchError naming the file", err)
	}
	// Another size: refused before reading.
	if err := VerifyBlob(ctx, cfGood, "dir/f", want, 4, WithRoot(root)); !errors.As(err, &mm) || mm.GotSize != 5 {
		t.Errorf("wrong size: %v", err)
	}
}
