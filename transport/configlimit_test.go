package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// TestConfigSizeLimit pins description.MaxConfigSize to the limit
// containers/image reads a config blob with (iolimits.MaxConfigBodySize,
// internal to it): a config of exactly MaxConfigSize bytes is read back, one
// byte more is refused. It fails when containers/image changes its limit.
func TestConfigSizeLimit(t *testing.T) {
	d := digest.FromString("layer")
	img := &description.Image{
		Version: description.Version, Architecture: "amd64", OS: "linux",
		Created: time.Unix(1, 0).UTC(),
		Config:  ocispec.ImageConfig{Env: []string{"PAD="}},
		Layers: []description.Layer{{
			Spec:   layers.Spec{Paths: []layers.Path{{Path: "/nix/store/0b0000000000000000000000000000hh-busybox"}}, MTime: layers.DefaultMTime},
			Digest: d, DiffID: d, Size: 1024, MediaType: description.MediaTypeLayer,
		}},
	}
	b, err := img.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	img.Config.Env[0] += strings.Repeat("x", description.MaxConfigSize-len(b))

	for _, c := range []struct {
		name  string
		extra string
		ok    bool
	}{
		{"exactly the limit", "", true},
		{"one byte over", "x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := *img
			img.Config.Env = []string{img.Config.Env[0] + c.extra}
			built, err := Build(&img)
			if err != nil {
				t.Fatal(err)
			}
			if want := description.MaxConfigSize + len(c.extra); len(built.Config) != want {
				t.Fatalf("config is %d bytes, want %d", len(built.Config), want)
			}
			if err := img.Validate(); (err == nil) != c.ok {
				t.Errorf("Validate: %v, want ok=%v", err, c.ok)
			}
			// Past Validate, as a description that skipped it would be.
			ref, err := newReference("limit.json", &img, nil)
			if err != nil {
				t.Fatal(err)
			}
			ci, err := ref.NewImage(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ci.Close()
			_, err = ci.ConfigBlob(context.Background())
			t.Logf("ConfigBlob: %v", err)
			if (err == nil) != c.ok {
				t.Fatalf("containers/image reading a %d-byte config: %v, want ok=%v", len(built.Config), err, c.ok)
			}
		})
	}
}
