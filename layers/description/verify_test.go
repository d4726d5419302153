package description

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/nixpush/nixpush/layers"
)

// storeImage makes a two-layer image over a fixture store below a temporary
// root, with digests and NAR hashes recorded as a Nix build would.
func storeImage(t *testing.T) (*Image, string) {
	t.Helper()
	root := t.TempDir()
	paths := []string{
		"/nix/store/0000000000000000000000000000000a-one",
		"/nix/store/0000000000000000000000000000000b-two",
	}
	img := &Image{Version: Version, Architecture: "amd64", OS: "linux", Created: layers.DefaultMTime}
	for i, p := range paths {
		host := filepath.Join(root, p)
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "data"), []byte(strings.Repeat("x", 100*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if err := nar.DumpPath(h, host); err != nil {
			t.Fatal(err)
		}
		narHash := nixhash.MustNewHashWithEncoding(nixhash.SHA256, h.Sum(nil), nixhash.NixBase32, true).String()
		spec := layers.Spec{Paths: []layers.Path{{Path: p, NarHash: narHash}}, MTime: layers.DefaultMTime}
		d, n, err := layers.Digest(context.Background(), spec, layers.WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		img.Layers = append(img.Layers, Layer{Spec: spec, Digest: d, DiffID: d, Size: n, MediaType: MediaTypeLayer})
	}
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	return img, root
}

func TestVerify(t *testing.T) {
	img, root := storeImage(t)
	var ok int
	if err := img.Verify(context.Background(), func(int, error) { ok++ }, layers.WithRoot(root)); err != nil || ok != 2 {
		t.Fatalf("unchanged image: %v (%d callbacks)", err, ok)
	}
	changed := filepath.Join(root, img.Layers[1].Paths[0].Path, "data")
	if err := os.Chmod(changed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := img.Verify(context.Background(), nil, layers.WithRoot(root))
	var le *LayerError
	var me *layers.MismatchError
	if !errors.As(err, &le) || le.Index != 1 || !errors.As(err, &me) {
		t.Fatalf("got %v, want layers[1] to mismatch", err)
	}
	for _, want := range []string{"layers[1] (" + string(img.Layers[1].Digest) + ") does not match its description", img.Layers[1].Paths[0].Path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), img.Layers[0].Paths[0].Path) {
		t.Errorf("error names the unchanged store path: %v", err)
	}
}
