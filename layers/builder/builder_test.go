package builder

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

const (
	libc      = "/nix/store/11111111111111111111111111111111-libc"
	app       = "/nix/store/22222222222222222222222222222222-app"
	rootfs    = "/nix/store/33333333333333333333333333333333-rootfs"
	carrier   = "/nix/store/44444444444444444444444444444444-nixpush-config.json"
	layerFile = "/nix/store/55555555555555555555555555555555-nixpush-layer.json"
)

// fixtureStore writes the store paths of testdata/*.attrs.json below a new
// root.
func fixtureStore(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{libc + "/lib/libc.so", "not really libc\n", 0o444},
		{app + "/bin/app", "#!/bin/sh\necho " + libc + "\n", 0o555},
		{rootfs + "/etc/hostname", "fixture\n", 0o444},
		{rootfs + "/tmp/.keep", "", 0o444},
		{carrier, `{"Entrypoint":["` + app + `/bin/app"]}`, 0o444},
	}
	for _, f := range files {
		name := filepath.Join(root, f.name)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// attrsFile writes testdata/name with its placeholders filled in.
func attrsFile(t *testing.T, name, out string, layerFiles ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	lj, _ := json.Marshal(append([]string{}, layerFiles...))
	s := strings.NewReplacer("@out@", out, "@layers@", string(lj)).Replace(string(b))
	f := filepath.Join(t.TempDir(), ".attrs.json")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// checkDigests re-hashes every layer and compares with what was recorded.
func checkDigests(t *testing.T, root string, ls []description.Layer) {
	t.Helper()
	for i, l := range ls {
		if err := l.Validate(); err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
		d, n, err := layers.Digest(context.Background(), l.Spec, layers.WithRoot(root))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if d != l.Digest || n != l.Size {
			t.Errorf("layer %d: recorded %s (%d bytes), hashes to %s (%d bytes)", i, l.Digest, l.Size, d, n)
		}
	}
}

func paths(ls []description.Layer) [][]string {
	var out [][]string
	for _, l := range ls {
		var ps []string
		for _, p := range l.Paths {
			s := p.Path
			if p.Rewrite != "" {
				s += "@" + p.Rewrite
			}
			ps = append(ps, s)
		}
		out = append(out, ps)
	}
	return out
}

func TestWriteLayerFileThenImage(t *testing.T) {
	ctx := context.Background()
	root := fixtureStore(t)

	// buildLayer { deps = [ libc ]; }, written where the image finds it.
	if err := WriteLayerFile(ctx, attrsFile(t, "layer.attrs.json", filepath.Join(root, layerFile)), WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	lf, err := description.ReadLayerFile(filepath.Join(root, layerFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(lf.Layers), [][]string{{libc}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("layer file paths = %v, want %v", got, want)
	}
	if h := lf.Layers[0].History; h.CreatedBy != "fixture: libc" || h.Comment != "shared" {
		t.Errorf("history = %+v, want the metadata", h)
	}
	checkDigests(t, root, lf.Layers)

	// buildImage { layers = [ that ]; copyToRoot = [ rootfs ]; config = …app…; maxLayers = 2; }
	out := filepath.Join(t.TempDir(), "image.json")
	if err := WriteImage(ctx, attrsFile(t, "image.attrs.json", out, layerFile), WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	img, err := description.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// libc comes from the layer file; app comes through the config
	// carrier, which stays out; rootfs is only at "/".
	want := [][]string{{libc}, {app, rootfs + "@/"}}
	if got := paths(img.Layers); !reflect.DeepEqual(got, want) {
		t.Fatalf("image paths = %v, want %v", got, want)
	}
	if img.Layers[0].Digest != lf.Layers[0].Digest || img.Layers[0].History != lf.Layers[0].History {
		t.Errorf("explicit layer changed: %+v, want %+v", img.Layers[0], lf.Layers[0])
	}
	checkDigests(t, root, img.Layers)
	if img.Name != "fixture" || img.Tag != "" || img.Architecture != "amd64" || img.OS != "linux" {
		t.Errorf("name %q tag %q arch %q os %q", img.Name, img.Tag, img.Architecture, img.OS)
	}
	if want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC); !img.Created.Equal(want) {
		t.Errorf("created = %v, want %v", img.Created, want)
	}
	if got := img.Config.Entrypoint; !reflect.DeepEqual(got, []string{app + "/bin/app"}) {
		t.Errorf("entrypoint = %v", got)
	}
	if ps := img.Layers[1].Perms; len(ps) != 1 || ps[0].Mode != "1777" {
		t.Errorf("perms of the top layer = %+v", ps)
	}
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), carrier) || strings.Contains(string(b), layerFile) || strings.Contains(string(b), "-nixpush/") {
		t.Errorf("image.json names the carrier, a layer file or nixpush:\n%s", b)
	}
}

func TestBuildImageWithoutLayerFiles(t *testing.T) {
	root := fixtureStore(t)
	a, err := ReadAttrs(attrsFile(t, "image.attrs.json", "/unused"))
	if err != nil {
		t.Fatal(err)
	}
	tag := "v1"
	a.ImageTag = &tag
	var results []*description.Image
	for _, n := range []int{1, 8} {
		img, err := BuildImage(context.Background(), a, WithRoot(root), WithConcurrency(n))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, img)
	}
	img := results[0]
	// libc has two ancestors (app, rootfs) and goes to the bottom.
	if got, want := paths(img.Layers), [][]string{{libc}, {app, rootfs + "@/"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	if img.Tag != "v1" {
		t.Errorf("tag = %q", img.Tag)
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Error("the result depends on the concurrency")
	}
	checkDigests(t, root, img.Layers)
}

func TestWriteConfig(t *testing.T) {
	out := filepath.Join(t.TempDir(), "config.json")
	if err := WriteConfig(context.Background(), attrsFile(t, "image.attrs.json", out)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), app+"/bin/app") {
		t.Errorf("config carrier does not name app:\n%s", b)
	}
}

// TestLayerFileRefused: a layers entry that is a symlink to a good layer
// file outside the store, or a layer file holding a blob layer, is
// refused, naming it; neither is read through nor dropped.
func TestLayerFileRefused(t *testing.T) {
	ctx := context.Background()
	root := fixtureStore(t)
	good := filepath.Join(t.TempDir(), "layer.json")
	if err := WriteLayerFile(ctx, attrsFile(t, "layer.attrs.json", good), WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good, filepath.Join(root, layerFile)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.json")
	err := WriteImage(ctx, attrsFile(t, "image.attrs.json", out, layerFile), WithRoot(root))
	if !errors.Is(err, layers.ErrSymlink) || !strings.Contains(err.Error(), "layers[0]") {
		t.Errorf("a layer file that is a symlink: %v, want layers[0] and ErrSymlink", err)
	}

	lf, err := description.ReadLayerFile(good)
	if err != nil {
		t.Fatal(err)
	}
	blob := lf.Layers[0]
	blob.Spec = layers.Spec{}
	blob.Blob = &description.BlobRef{Path: app, File: "bin/app"}
	lf.Layers = []description.Layer{blob}
	lf.Version = description.NeededVersion(lf.Layers)
	b, err := description.Marshal(lf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, layerFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, layerFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = WriteImage(ctx, attrsFile(t, "image.attrs.json", out, layerFile), WithRoot(root))
	if err == nil || !strings.Contains(err.Error(), "layers[0].blob: a layer file holds only layers of store paths") {
		t.Errorf("a layer file with a blob layer: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	root := fixtureStore(t)
	tests := []struct {
		name   string
		file   string
		layers []string
		edit   func(m map[string]any)
		want   string
	}{
		{"bad regex", "image.attrs.json", nil, func(m map[string]any) {
			m["perms"] = []any{map[string]any{"regex": "(", "mode": "0755"}}
		}, `perms[0].regex: "("`},
		{"unused bad regex", "layer.attrs.json", nil, func(m map[string]any) {
			m["perms"] = []any{map[string]any{"path": libc, "regex": "/a"}, map[string]any{"regex": "[z-a]"}}
		}, `perms[1].regex: "[z-a]"`},
		{"misspelt perms field", "image.attrs.json", nil, func(m map[string]any) {
			m["perms"] = []any{map[string]any{"regex": "/tmp", "mdoe": "0755"}}
		}, `perms[0].mdoe: unknown field`},
		{"perms mode not a string", "image.attrs.json", nil, func(m map[string]any) {
			m["perms"] = []any{map[string]any{"regex": "/tmp", "mode": 755}}
		}, "perms[0].mode: expected a string, got JSON number 755"},
		{"perms path not in image", "layer.attrs.json", nil, func(m map[string]any) {
			m["perms"] = []any{map[string]any{"path": app, "regex": ".*"}}
		}, "perms[0].path: " + app + " is not in the closure graph"},
		{"dep not in closure", "layer.attrs.json", nil, func(m map[string]any) {
			m["deps"] = []any{libc, "/nix/store/66666666666666666666666666666666-gone"}
		}, "deps[1]: /nix/store/66666666666666666666666666666666-gone is not in the closure graph"},
		{"copyToRoot missing on disk", "layer.attrs.json", nil, func(m map[string]any) {
			m["closure"] = append(m["closure"].([]any), map[string]any{
				"path": "/nix/store/77777777777777777777777777777777-vanished", "narHash": "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29"})
			m["copyToRoot"] = []any{"/nix/store/77777777777777777777777777777777-vanished"}
		}, "77777777777777777777777777777777-vanished"},
		{"no closure", "layer.attrs.json", nil, func(m map[string]any) { delete(m, "closure") }, "closure: missing"},
		{"bad closure", "layer.attrs.json", nil, func(m map[string]any) {
			m["closure"] = []any{map[string]any{"path": libc, "narHash": "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29", "references": []any{app}}}
		}, libc + ": references " + app},
		{"bad mtime", "layer.attrs.json", nil, func(m map[string]any) { m["mtime"] = "yesterday" }, `mtime: "yesterday" is not an RFC 3339 time`},
		{"bad created", "image.attrs.json", nil, func(m map[string]any) { m["created"] = "1960-01-01T00:00:00Z" }, `created: "1960-01-01T00:00:00Z" is before 1970`},
		{"zero budget", "layer.attrs.json", nil, func(m map[string]any) { m["maxLayers"] = -1 }, "maxLayers: -1"},
		{"missing layer file", "layer.attrs.json", []string{"/nix/store/88888888888888888888888888888888-nixpush-layer.json"}, nil,
			"layers[0]: reading layer file"},
		{"layer file not a store path", "layer.attrs.json", []string{"/tmp/layer.json"}, nil, `layers[0]: "/tmp/layer.json" is not below /nix/store`},
		{"empty layer", "layer.attrs.json", nil, func(m map[string]any) { m["deps"] = []any{} }, "nothing to put in a layer"},
		{"unknown config field", "image.attrs.json", nil, func(m map[string]any) {
			m["config"] = map[string]any{"Entrypoint": []any{"/bin/sh"}, "Entrypiont": []any{"/bin/sh"}}
		}, `config.Entrypiont: unknown field`},
		{"config names a path outside the image", "image.attrs.json", nil, func(m map[string]any) {
			m["config"] = map[string]any{"Cmd": []any{app + "/bin/app", "/nix/store/66666666666666666666666666666666-gone/bin/x"}}
		}, "config: names /nix/store/66666666666666666666666666666666-gone, which the image does not hold"},
		{"config names a path only at /", "image.attrs.json", nil, func(m map[string]any) {
			m["config"] = map[string]any{"Cmd": []any{rootfs + "/bin/sh"}}
		}, "config: names " + rootfs},
		{"bad tag", "image.attrs.json", nil, func(m map[string]any) { m["imageTag"] = "-v1" }, `imageTag: "-v1" is not a valid tag`},
		{"empty tag", "image.attrs.json", nil, func(m map[string]any) { m["imageTag"] = "" }, `imageTag: "" is not a valid tag`},
		{"no image name", "image.attrs.json", nil, func(m map[string]any) { delete(m, "imageName") }, "imageName: missing"},
		{"carrier not in closure", "image.attrs.json", nil, func(m map[string]any) {
			m["configRefs"] = "/nix/store/66666666666666666666666666666666-gone"
		}, "configRefs: /nix/store/66666666666666666666666666666666-gone is not in the closure graph"},
		{"no arch", "image.attrs.json", nil, func(m map[string]any) { delete(m, "arch") }, "architecture: missing"},
		{"no output", "layer.attrs.json", nil, func(m map[string]any) { delete(m, "outputs") }, "outputs.out: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(attrsFile(t, tt.file, "/unused", tt.layers...))
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]any{}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(m)
			}
			b, _ = json.Marshal(m)
			a, err := ParseAttrs(b)
			if err == nil {
				if tt.file == "image.attrs.json" {
					_, err = BuildImage(context.Background(), a, WithRoot(root))
				} else {
					_, err = BuildLayerFile(context.Background(), a, WithRoot(root))
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadAttrsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadAttrs(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"outputs": {"out": 3}}`), 0o644)
	if _, err := ReadAttrs(bad); err == nil || !strings.Contains(err.Error(), "outputs.out: expected a string, got JSON number 3") {
		t.Errorf("bad type: %v", err)
	}
}

// TestBuildImageCompressed: with compression, every computed layer is
// compressed, its diffID is its tar's sha256 and its digest the blob's, the
// description is version 2 and its media types say so; without, version 1.
func TestBuildImageCompressed(t *testing.T) {
	root := fixtureStore(t)
	for _, c := range []*layers.Compression{nil, {Algorithm: layers.Zstd}, {Algorithm: layers.Gzip, Level: 9}} {
		a, err := ReadAttrs(attrsFile(t, "image.attrs.json", "/unused"))
		if err != nil {
			t.Fatal(err)
		}
		a.Compression = c
		img, err := BuildImage(context.Background(), a, WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		wantVersion := 1
		if c != nil {
			wantVersion = 2
		}
		if img.Version != wantVersion {
			t.Errorf("%+v: version %d, want %d", c, img.Version, wantVersion)
		}
		checkDigests(t, root, img.Layers)
		for i, l := range img.Layers {
			if !reflect.DeepEqual(l.Compression, c) || l.MediaType != description.LayerMediaType(c) {
				t.Errorf("%+v: layer %d: compression %+v, media type %s", c, i, l.Compression, l.MediaType)
			}
			plain := l.Spec
			plain.Compression = nil
			tarDigest, _, err := layers.Digest(context.Background(), plain, layers.WithRoot(root))
			if err != nil {
				t.Fatal(err)
			}
			if l.DiffID != tarDigest || (c != nil) == (l.DiffID == l.Digest) {
				t.Errorf("%+v: layer %d: diffID %s, digest %s, tar %s", c, i, l.DiffID, l.Digest, tarDigest)
			}
		}
	}
}
