package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// goldenImage is a fixed description; its manifest digest is pinned below.
func goldenImage(created time.Time) *description.Image {
	layer := func(d string, size int64, path, createdBy string) description.Layer {
		return description.Layer{
			Spec:   layers.Spec{Paths: []layers.Path{{Path: path}}, MTime: layers.DefaultMTime},
			Digest: digest.Digest(d), DiffID: digest.Digest(d), Size: size,
			MediaType: description.MediaTypeLayer,
			History:   description.History{CreatedBy: createdBy},
		}
	}
	return &description.Image{
		Version: description.Version, Name: "golden", Tag: "v1",
		Architecture: "amd64", OS: "linux", Created: created,
		Config: ocispec.ImageConfig{
			Entrypoint:   []string{"/nix/store/0c0000000000000000000000000000hh-hello/bin/hello"},
			Env:          []string{"PATH=/bin", "A=<&>"},
			Labels:       map[string]string{"z": "last", "a": "first"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "443/tcp": {}},
		},
		Layers: []description.Layer{
			layer("sha256:1111111111111111111111111111111111111111111111111111111111111111", 10240, "/nix/store/0b0000000000000000000000000000hh-busybox", "busybox"),
			layer("sha256:2222222222222222222222222222222222222222222222222222222222222222", 20480, "/nix/store/0c0000000000000000000000000000hh-hello", "hello"),
		},
	}
}

// goldenManifest pins the manifest digest of goldenImage: a change here is
// a change of every pushed image's digest.
const goldenManifest = "sha256:45a9c84b76a7f1df37c20c13dd61e0cb59a6b37333b07624954713ccbc22a355"

func TestBuildDeterministic(t *testing.T) {
	utc := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		created time.Time
	}{
		{"UTC", utc},
		{"another zone", utc.In(time.FixedZone("CEST", 2*3600))},
		{"monotonic clock reading", utc.Add(0)},
	}
	var first *transport.Built
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := transport.Build(goldenImage(tc.created))
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = b
			}
			if string(b.Manifest) != string(first.Manifest) || string(b.Config) != string(first.Config) {
				t.Errorf("manifest or config differs:\n%s\n%s\nwant\n%s\n%s", b.Manifest, b.Config, first.Manifest, first.Config)
			}
			if b.ManifestDigest != digest.FromBytes(b.Manifest) || b.ConfigDigest != digest.FromBytes(b.Config) {
				t.Errorf("digests do not match the bytes")
			}
		})
	}
	if got := first.ManifestDigest.String(); got != goldenManifest {
		t.Errorf("golden manifest digest %s, want %s\nmanifest: %s\nconfig: %s", got, goldenManifest, first.Manifest, first.Config)
	}

	var m ocispec.Manifest
	if err := json.Unmarshal(first.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.Digest != first.ConfigDigest || len(m.Layers) != 2 ||
		m.Layers[1].MediaType != ocispec.MediaTypeImageLayer || m.Layers[1].Size != 20480 {
		t.Errorf("unexpected manifest %s", first.Manifest)
	}
	var c ocispec.Image
	if err := json.Unmarshal(first.Config, &c); err != nil {
		t.Fatal(err)
	}
	if c.RootFS.DiffIDs[0] != m.Layers[0].Digest || len(c.History) != 2 || c.History[1].CreatedBy != "hello" || !c.Created.Equal(tests[0].created) {
		t.Errorf("unexpected config %s", first.Config)
	}
}

// TestReference parses nix: references through alltransports and checks
// that the transport is read-only.
func TestReference(t *testing.T) {
	_, err := alltransports.ParseImageName("nix:" + t.TempDir() + "/missing.json")
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing description: err = %v, want one naming the file", err)
	}

	// Reading a description does not touch the store.
	img := goldenImage(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	path := writeDescription(t, img)
	ref, err := alltransports.ParseImageName("nix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ref.(*transport.Reference); !ok {
		t.Fatalf("ParseImageName returned %T, want *transport.Reference", ref)
	}
	if got := transport.Transport.Name() + ":" + ref.StringWithinTransport(); got != "nix:"+path {
		t.Errorf("reference %q, want nix:%s", got, path)
	}
	ctx := context.Background()
	if _, err := ref.NewImageDestination(ctx, nil); !errors.Is(err, transport.ErrReadOnly) {
		t.Errorf("NewImageDestination: %v, want ErrReadOnly", err)
	}
	if err := ref.DeleteImage(ctx, nil); !errors.Is(err, transport.ErrReadOnly) {
		t.Errorf("DeleteImage: %v, want ErrReadOnly", err)
	}

	src, err := ref.NewImageSource(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	built, err := transport.Build(img)
	if err != nil {
		t.Fatal(err)
	}
	man, mt, err := src.GetManifest(ctx, nil)
	if err != nil || string(man) != string(built.Manifest) || mt != ocispec.MediaTypeImageManifest {
		t.Errorf("GetManifest: %s %q %v", man, mt, err)
	}
	rc, size, err := src.GetBlob(ctx, types.BlobInfo{Digest: built.ConfigDigest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := io.ReadAll(rc)
	rc.Close()
	if string(cfg) != string(built.Config) || size != int64(len(cfg)) {
		t.Errorf("GetBlob(config) = %s (%d)", cfg, size)
	}
	if _, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: digest.FromString("nope")}, nil); err == nil {
		t.Errorf("GetBlob of an unknown blob succeeded")
	}
}

func writeDescription(t *testing.T, img *description.Image) string {
	t.Helper()
	b, err := description.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/image.json"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckStoredSize: a registry's size for a layer or the config is
// compared with the image's; only a difference is a *SizeError, naming
// the blob and saying who is wrong.
func TestCheckStoredSize(t *testing.T) {
	img := goldenImage(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	built, err := transport.Build(img)
	if err != nil {
		t.Fatal(err)
	}
	cfgSize := int64(len(built.Config))
	tests := []struct {
		name   string
		digest digest.Digest
		stored int64
		index  int    // of the *SizeError; -2: no error
		want   string // in its message
	}{
		{"layer, same size", img.Layers[1].Digest, 20480, -2, ""},
		{"layer, smaller in the registry", img.Layers[1].Digest, 2048, 1, "layers[1] (" + img.Layers[1].Digest.String() + ") is 2048 bytes in the registry, but the description says 20480 bytes"},
		{"layer, larger in the registry", img.Layers[0].Digest, 1 << 33, 0, "description's size is wrong"},
		{"config, same size", built.ConfigDigest, cfgSize, -2, ""},
		{"config, another size", built.ConfigDigest, cfgSize + 1, -1, "the registry misreports the size"},
		{"not in the image", digest.FromString("other"), 1, -2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := built.CheckStoredSize(tc.digest, tc.stored)
			var se *transport.SizeError
			if tc.index == -2 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.As(err, &se) || se.Index != tc.index || se.Digest != tc.digest || se.Stored != tc.stored {
				t.Fatalf("got %v, want a *SizeError for index %d", err, tc.index)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not say %q", err, tc.want)
			}
		})
	}
}

// TestOpen: a built image opens its config from memory and its layers
// from the store; a layer whose bytes no longer match its description ends
// in a *description.LayerError naming it, wrapping the *layers.MismatchError,
// before io.EOF: a reader that stops at the error never takes the blob.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	p := transporttest.AddStorePath(t, "open", map[string]transporttest.File{"hello": {Data: "hi\n"}})
	q := transporttest.AddStorePath(t, "open2", map[string]transporttest.File{"bye": {Data: "bye\n"}})
	img := transporttest.Describe(t, "open", ocispec.ImageConfig{}, []transporttest.Layer{{Paths: []layers.Path{p}}, {Paths: []layers.Path{q}}})
	built, err := transport.Build(img)
	if err != nil {
		t.Fatal(err)
	}
	blobs := built.Blobs()
	if len(blobs) != 3 || !blobs[0].IsConfig() || blobs[0].Digest != built.ConfigDigest || blobs[2].Index != 1 || blobs[2].Digest != img.Layers[1].Digest {
		t.Errorf("Blobs() = %+v, want the config, then the layers", blobs)
	}
	for _, b := range blobs {
		rc, size, err := built.Open(ctx, b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || int64(len(data)) != size || size != b.Size || digest.FromBytes(data) != b.Digest {
			t.Errorf("Open(%s): %d bytes of %d (%v), want the blob", b.Digest, len(data), size, err)
		}
	}
	if _, _, err := built.Open(ctx, digest.FromString("nope")); err == nil {
		t.Errorf("Open of a blob not in the image succeeded")
	}

	edited := *img
	edited.Layers = append(edited.Layers[:0:0], img.Layers...)
	edited.Layers[1].Digest = digest.Digest("sha256:" + strings.Repeat("9", 64))
	edited.Layers[1].DiffID = edited.Layers[1].Digest
	eb, err := transport.Build(&edited)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := eb.Open(ctx, edited.Layers[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	var le *description.LayerError
	var mm *layers.MismatchError
	if !errors.As(err, &le) || le.Index != 1 || !errors.As(err, &mm) || mm.Want != edited.Layers[1].Digest {
		t.Fatalf("reading an edited layer: %v, want layers[1]'s *description.LayerError and *layers.MismatchError", err)
	}
	if !strings.Contains(err.Error(), "layers[1] ("+edited.Layers[1].Digest.String()+") does not match its description") {
		t.Errorf("error does not name the layer: %v", err)
	}
}
