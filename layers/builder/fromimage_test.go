package builder

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers/description"
)

const pulledBase = "/nix/store/00000000000000000000000000000000-image-base"

// writeLayout writes a pulled layout below root: one Docker gzip layer
// and one OCI zstd layer, a config with history (an empty_layer entry
// included), and index.json naming the repository.
func writeLayout(t *testing.T, root string, history []ocispec.History) (m ocispec.Manifest) {
	t.Helper()
	dir := filepath.Join(root, pulledBase)
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	l1, l2 := []byte("layer one (gzip)"), []byte("layer two (zstd)")
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=base"}, Cmd: []string{"sh"}, WorkingDir: "/srv",
			Labels: map[string]string{"base": "1", "both": "base"}},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("tar one"), digest.FromString("tar two")}},
		History: history,
	}
	cb, _ := json.Marshal(cfg)
	m = ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: dockerManifest,
		Config:    ocispec.Descriptor{MediaType: "application/vnd.docker.container.image.v1+json", Digest: put(cb), Size: int64(len(cb))},
		Layers: []ocispec.Descriptor{
			{MediaType: dockerGzipLayer, Digest: put(l1), Size: int64(len(l1))},
			{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: put(l2), Size: int64(len(l2))},
		},
	}
	mb, _ := json.Marshal(m)
	md := put(mb)
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{{
		MediaType: dockerManifest, Digest: md, Size: int64(len(mb)),
		Annotations: map[string]string{description.AnnotationPulledName: "registry.example.com/base"},
	}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadPulledBase(t *testing.T) {
	root := t.TempDir()
	hist := []ocispec.History{{CreatedBy: "ADD one"}, {CreatedBy: "ENV A=base", EmptyLayer: true}, {CreatedBy: "ADD two"}}
	m := writeLayout(t, root, hist)
	b, err := readBase(pulledBase, makeOptions([]Option{WithRoot(root)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.layers) != 2 || len(b.history) != 3 {
		t.Fatalf("base: %d layers, %d history entries", len(b.layers), len(b.history))
	}
	for i, l := range b.layers {
		want := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd}[i]
		if l.Blob == nil || l.Blob.Path != pulledBase || l.Blob.File != "blobs/sha256/"+m.Layers[i].Digest.Encoded() ||
			l.Blob.Repository != "registry.example.com/base" || l.MediaType != want || l.Digest != m.Layers[i].Digest {
			t.Errorf("layers[%d] = %+v %+v", i, l, l.Blob)
		}
		if err := l.Validate(); err != nil {
			t.Errorf("layers[%d]: %v", i, err)
		}
	}

	img := &description.Image{OS: "linux", Architecture: "amd64",
		Config: ocispec.ImageConfig{Env: []string{"A=app", "B=app"}, Entrypoint: []string{"/app"}, Labels: map[string]string{"both": "app"}}}
	if err := b.apply(img, json.RawMessage(`{"Env":["A=app","B=app"],"Entrypoint":["/app"],"Labels":{"both":"app"}}`)); err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if !slices.Equal(c.Env, []string{"PATH=/bin", "A=app", "B=app"}) || c.Cmd != nil || c.WorkingDir != "/srv" ||
		c.Labels["base"] != "1" || c.Labels["both"] != "app" || len(img.BaseHistory) != 3 {
		t.Errorf("merged config %+v, base history %d entries", c, len(img.BaseHistory))
	}

	arm := &description.Image{OS: "linux", Architecture: "arm64"}
	if err := b.apply(arm, nil); err == nil || !strings.Contains(err.Error(), "the base image is linux/amd64, the image linux/arm64") {
		t.Errorf("other architecture: %v", err)
	}

	// A history that does not match the layers is not kept: each base
	// layer gets its own entry.
	root = t.TempDir()
	writeLayout(t, root, hist[:1])
	if b, err = readBase(pulledBase, makeOptions([]Option{WithRoot(root)})); err != nil {
		t.Fatal(err)
	}
	if b.history != nil || b.layers[0].History.CreatedBy != createdByBase {
		t.Errorf("mismatched history kept: %+v, %+v", b.history, b.layers[0].History)
	}
}

func TestMergeConfig(t *testing.T) {
	base := ocispec.ImageConfig{Entrypoint: []string{"/base"}, Cmd: []string{"-x"}, User: "base", StopSignal: "SIGINT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}}}
	for _, c := range []struct {
		name string
		raw  string
		img  ocispec.ImageConfig
		want ocispec.ImageConfig
	}{
		{"nothing set inherits everything", `{}`, ocispec.ImageConfig{}, base},
		{"Cmd alone keeps the Entrypoint", `{"Cmd":["-y"]}`, ocispec.ImageConfig{Cmd: []string{"-y"}},
			ocispec.ImageConfig{Entrypoint: []string{"/base"}, Cmd: []string{"-y"}, User: "base", StopSignal: "SIGINT", ExposedPorts: base.ExposedPorts}},
		{"Entrypoint without Cmd clears Cmd", `{"Entrypoint":["/app"]}`, ocispec.ImageConfig{Entrypoint: []string{"/app"}},
			ocispec.ImageConfig{Entrypoint: []string{"/app"}, User: "base", StopSignal: "SIGINT", ExposedPorts: base.ExposedPorts}},
		{"empty list clears", `{"Entrypoint":[],"ExposedPorts":{},"User":""}`, ocispec.ImageConfig{Entrypoint: []string{}},
			ocispec.ImageConfig{Entrypoint: []string{}, StopSignal: "SIGINT"}},
		{"keys as encoding/json matches them", `{"entrypoint":["/app"],"user":""}`, ocispec.ImageConfig{Entrypoint: []string{"/app"}},
			ocispec.ImageConfig{Entrypoint: []string{"/app"}, StopSignal: "SIGINT", ExposedPorts: base.ExposedPorts}},
	} {
		t.Run(c.name, func(t *testing.T) {
			set, err := configKeys(json.RawMessage(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(mergeConfig(base, c.img, set))
			want, _ := json.Marshal(c.want)
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestStackTooManyLayers(t *testing.T) {
	b := &base{from: pulledBase}
	for i := range 100 {
		b.layers = append(b.layers, description.Layer{Digest: digest.FromString(strings.Repeat("b", i+1))})
	}
	var own []description.Layer
	for i := range 28 {
		own = append(own, description.Layer{Digest: digest.FromString(strings.Repeat("n", i+1))})
	}
	if _, err := b.stack(own[:27]); err != nil {
		t.Errorf("127 layers: %v", err)
	}
	_, err := b.stack(own)
	if !errors.Is(err, description.ErrTooManyLayers) || !strings.Contains(err.Error(), "the base's 100 layers and the image's 28 make 128") {
		t.Errorf("128 layers: %v", err)
	}
}
