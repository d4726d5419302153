package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/opencontainers/go-digest"
)

// TestTarStructure reads a layer back with archive/tar and checks the rules
// of doc.go entry by entry, including that file bytes equal the store's.
func TestTarStructure(t *testing.T) {
	root := materialize(t, host{umask: 0o002, hardlinks: true})
	var buf bytes.Buffer
	spec := Spec{Paths: []Path{{Path: fxTree}, {Path: fxSingle}, {Path: fxEnv, Rewrite: "/"}}}
	if err := Write(context.Background(), &buf, spec, WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if len(names) > 1 && names[len(names)-2] >= hdr.Name {
			t.Errorf("%q does not sort after %q", hdr.Name, names[len(names)-2])
		}
		if parent := filepath.Dir(strings.TrimSuffix(hdr.Name, "/")); parent != "." && !seen[parent+"/"] {
			t.Errorf("%q comes before its parent directory", hdr.Name)
		}
		seen[hdr.Name] = true
		if !hdr.ModTime.Equal(DefaultMTime) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q gname %q", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if strings.HasPrefix(hdr.Name, "/") || strings.Contains(hdr.Name, "./") {
			t.Errorf("%q is not a clean relative name", hdr.Name)
		}
		if len(hdr.Xattrs) > 0 || len(hdr.PAXRecords) > 0 && hdr.Format != tar.FormatPAX {
			t.Errorf("%s: unexpected extended attributes", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !strings.HasSuffix(hdr.Name, "/") {
				t.Errorf("directory %q lacks a trailing slash", hdr.Name)
			}
			want := int64(0o555)
			if hdr.Name == "nix/" || hdr.Name == "nix/store/" {
				want = 0o755
			}
			if hdr.Mode != want {
				t.Errorf("%s: mode %o, want %o", hdr.Name, hdr.Mode, want)
			}
		case tar.TypeSymlink:
			if hdr.Mode != 0o777 {
				t.Errorf("%s: mode %o", hdr.Name, hdr.Mode)
			}
		case tar.TypeReg:
			hostPath := filepath.Join(root, hdr.Name)
			if strings.HasPrefix(hdr.Name, "etc/") {
				hostPath = filepath.Join(root, fxEnv, hdr.Name)
			}
			want, err := os.ReadFile(hostPath)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(tr)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs from %s", hdr.Name, hostPath)
			}
			wantMode := int64(0o444)
			if strings.HasSuffix(hdr.Name, "bin/hello") {
				wantMode = 0o555
			}
			if hdr.Mode != wantMode {
				t.Errorf("%s: mode %o, want %o", hdr.Name, hdr.Mode, wantMode)
			}
		default:
			t.Errorf("%s: unexpected type %c (hardlinks must be written as files)", hdr.Name, hdr.Typeflag)
		}
		if len(hdr.Name) <= 100 && isASCII(hdr.Name) && hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR", hdr.Name, hdr.Format)
		}
	}
	if len(names) < 3 || names[0] != "bin/" || !seen["nix/"] || !seen["nix/store/"] {
		t.Errorf("layer lacks the expected top-level entries: %q", names[:min(3, len(names))])
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestBadInput: each kind of bad input fails with an error naming the thing
// at fault.
func TestBadInput(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	fifoPath := StoreDir + "/0000000000000000000000000000000g-fifo"
	if err := os.MkdirAll(filepath.Join(root, fifoPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, fifoPath, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := StoreDir + "/0000000000000000000000000000000h-missing"
	cases := []struct {
		name string
		spec Spec
		want []string
	}{
		{"missing store path", Spec{Paths: []Path{{Path: missing}}}, []string{missing, "missing"}},
		{"not a store path", Spec{Paths: []Path{{Path: "/usr/bin"}}}, []string{"paths[0]", "/usr/bin"}},
		{"bad regex", Spec{Paths: []Path{{Path: fxTree}}, Perms: []Perm{{Regex: "(["}}}, []string{"perms[0]", "(["}},
		{"bad mode", Spec{Paths: []Path{{Path: fxTree}}, Perms: []Perm{{Regex: ".*", Mode: "0999"}}}, []string{"perms[0]", "0999"}},
		{"fifo", Spec{Paths: []Path{{Path: fifoPath}}}, []string{fifoPath, "/pipe", "fifo"}},
		{"rewrite of a file", Spec{Paths: []Path{{Path: fxSingle, Rewrite: "/"}}}, []string{fxSingle, "directory"}},
		{"different content at one path", Spec{Paths: []Path{{Path: fxEnv, Rewrite: "/"}, {Path: fxClash, Rewrite: "/"}}},
			[]string{"/bin/hello", fxEnv, fxClash}},
		{"bad narHash", Spec{Paths: []Path{{Path: fxTree, NarHash: "sha256:nope"}}}, []string{"paths[0]", "narHash"}},
		{"no paths", Spec{}, []string{"paths"}},
		{"listed twice", Spec{Paths: []Path{{Path: fxTree}, {Path: fxTree}}}, []string{"paths[1]", fxTree}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Digest(context.Background(), c.spec, WithRoot(root))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func narHashOf(t *testing.T, p string) string {
	t.Helper()
	h := sha256.New()
	if err := nar.DumpPath(h, p); err != nil {
		t.Fatal(err)
	}
	return nixhash.MustNewHashWithEncoding(nixhash.SHA256, h.Sum(nil), nixhash.NixBase32, true).String()
}

// recordedLayer materialises the fixture and records a layer of fxTree and
// fxSingle as a build would: NAR hashes, digest and size.
func recordedLayer(t *testing.T) (root string, spec Spec, want digest.Digest, size int64) {
	t.Helper()
	root = materialize(t, host{umask: 0o022})
	spec = Spec{Paths: []Path{
		{Path: fxTree, NarHash: narHashOf(t, filepath.Join(root, fxTree))},
		{Path: fxSingle, NarHash: narHashOf(t, filepath.Join(root, fxSingle))},
	}}
	want, size, err := Digest(context.Background(), spec, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	return root, spec, want, size
}

// TestOpenMismatch: a store file changed after the digest was recorded makes
// the stream end in a *MismatchError that names the changed store path and
// only that one; an unchanged layer streams exactly its recorded bytes.
func TestOpenMismatch(t *testing.T) {
	root, spec, want, size := recordedLayer(t)

	rc := Open(context.Background(), spec, want, size, WithRoot(root))
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatalf("unchanged layer: %v", err)
	}
	rc.Close()
	if int64(buf.Len()) != size || sha256Digest(buf.Bytes()) != want.Encoded() {
		t.Fatalf("Open streamed %d bytes that differ from the recorded layer", buf.Len())
	}
	if err := Verify(context.Background(), spec, want, size, WithRoot(root)); err != nil {
		t.Fatalf("Verify of an unchanged layer: %v", err)
	}

	for _, tc := range []struct{ name, content string }{
		{"same size", "#!/bin/sh\necho HELLO\n"},
		{"larger", "#!/bin/sh\necho hello, a longer greeting that grows the layer past its size\n" + strings.Repeat("x", 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(root, fxTree, "bin/hello")
			if err := os.WriteFile(p, []byte(tc.content), 0o755); err != nil {
				t.Fatal(err)
			}
			rc := Open(context.Background(), spec, want, size, WithRoot(root))
			defer rc.Close()
			_, err := io.Copy(io.Discard, rc)
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *MismatchError", err)
			}
			if len(me.Changed) != 1 || me.Changed[0].Path != fxTree || !strings.Contains(err.Error(), fxTree) {
				t.Fatalf("error does not name exactly %s: %v", fxTree, err)
			}
			if err := Verify(context.Background(), spec, want, size, WithRoot(root)); !errors.As(err, &me) {
				t.Fatalf("Verify: got %v, want a *MismatchError", err)
			}
		})
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestOpenClose: closing the reader early stops the writer.
func TestOpenClose(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	spec := Spec{Paths: []Path{{Path: fxTree}}}
	rc := Open(context.Background(), spec, digest.Digest("sha256:"+strings.Repeat("0", 64)), 1<<30, WithRoot(root))
	if _, err := rc.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStream: Stream gives the same bytes as Open without hashing them: a
// same-size change streams through to io.EOF (the caller's hash catches
// it), while a layer that grows or shrinks ends in a *MismatchError naming
// the changed store path.
func TestStream(t *testing.T) {
	root, spec, want, size := recordedLayer(t)
	read := func() ([]byte, error) {
		rc := Stream(context.Background(), spec, want, size, WithRoot(root))
		defer rc.Close()
		return io.ReadAll(rc)
	}
	b, err := read()
	if err != nil || int64(len(b)) != size || sha256Digest(b) != want.Encoded() {
		t.Fatalf("unchanged layer: %d bytes, error %v; want the recorded %d bytes", len(b), err, size)
	}

	p := filepath.Join(root, fxTree, "bin/hello")
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	same := bytes.ToUpper(orig)
	if err := os.WriteFile(p, same, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := read(); err != nil || int64(len(b)) != size || sha256Digest(b) == want.Encoded() {
		t.Fatalf("same-size change: %d bytes, error %v; want %d other bytes and no error", len(b), err, size)
	}

	for _, tc := range []struct {
		name, content string
		says          string
	}{
		{"larger", string(orig) + strings.Repeat("x", 4096), "larger than the recorded"},
		{"smaller", "", fmt.Sprintf(", recorded %d (", size)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(p, []byte(tc.content), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := read()
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *MismatchError", err)
			}
			if me.Got != "" || len(me.Changed) != 1 || me.Changed[0].Path != fxTree || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error does not say %q and name exactly %s: %v", tc.says, fxTree, err)
			}
		})
	}
}
