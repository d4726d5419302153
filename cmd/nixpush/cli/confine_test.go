package cli_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestConfinement: descriptions that name a host directory through a
// store path that is a symlink to it (a trailing "/", "/.", "//", or a
// ".." from another store path) are refused by every command that reads
// them, with an error naming the path, and the host file's bytes appear in
// no output, no OCI layout and no registry.
func TestConfinement(t *testing.T) {
	const secret = "CANARY-shadow-4d1b9e"
	bin := buildNixpush(t)
	hostDir := t.TempDir() // stands for /etc: outside the store
	if err := os.WriteFile(filepath.Join(hostDir, "shadow"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A store path that is a symlink to the host directory, as any build
	// can make one.
	link := transporttest.AddStorePath(t, "etclink", map[string]transporttest.File{"x": {Data: "x"}})
	linkDir := filepath.Join(t.TempDir(), "etclink")
	if err := os.Symlink(hostDir, linkDir); err != nil {
		t.Fatal(err)
	}
	etclink, err := testenv.Nix(t, "nix-store", "--add", linkDir)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(etclink); err != nil || target != hostDir {
		t.Fatalf("%s: want a symlink to %s, got %q, %v", etclink, hostDir, target, err)
	}
	good := transporttest.Describe(t, "confine", ocispec.ImageConfig{}, []transporttest.Layer{{Paths: []layers.Path{link}}})
	reg := testenv.StartRegistry(t)

	for _, bad := range []string{etclink + "/", etclink + "/.", etclink + "//", link.Path + "/../" + path.Base(etclink)} {
		t.Run(bad, func(t *testing.T) {
			img := *good
			img.Layers = append(img.Layers[:0:0], good.Layers...)
			img.Layers[0].Paths = []layers.Path{{Path: bad}}
			desc := writeJSON(t, img)
			plan := writeJSON(t, registry.Plan{Images: []registry.Image{{Source: desc, Destinations: []string{"docker://" + reg.Host + "/confine:v1"}}}})
			layout := filepath.Join(t.TempDir(), "layout")
			for _, args := range [][]string{
				{"verify", desc},
				{"inspect", "nix:" + desc},
				{"copy", "-q", "nix:" + desc, "oci:" + layout + ":v1"},
				{"copy", "-q", "--dest-tls-verify=false", "nix:" + desc, "docker://" + reg.Host + "/confine:v1"},
				{"push", "-q", "--dest-tls-verify=false", "nix:" + desc, "docker://" + reg.Host + "/confine:v2"},
				{"push", "-q", "--dest-tls-verify=false", "--plan", plan},
			} {
				r := run(t, bin, nil, args...)
				if r.err == nil {
					t.Errorf("nixpush %s succeeded", strings.Join(args, " "))
				}
				if !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "not a store path") {
					t.Errorf("nixpush %s: stderr does not refuse %q as a store path:\n%s", args[0], bad, r.stderr)
				}
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("nixpush %s: the host file's bytes are in the output", args[0])
				}
			}
			assertNoSecret(t, layout, secret)
			assertNoSecret(t, reg.DataDir(), secret)
			for _, q := range reg.Requests(0) {
				if q.IsBlobWrite() || q.IsManifestWrite() {
					t.Errorf("the registry got %s", q)
				}
			}
		})
	}
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "file.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertNoSecret fails if any file below dir holds secret.
func assertNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil //nolint:nilerr // a missing dir holds nothing
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the host file's bytes", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
