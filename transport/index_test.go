package transport_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
)

// Golden digests of the index format: goldenImage for amd64 and, with
// annotations, for arm64 v8, in an index with annotations. A change here
// is a change of every pushed index's digest.
const (
	goldenAnnotatedManifest = "sha256:b0aeca528ef0e1e4a16a5ac298a3218f7bfb25a1a3e820edcddbcf1e34c1d42d"
	goldenIndex             = "sha256:ad91a6ca9825bbb103324ac753a69fccd977f22c5d62f3ce751061149a717c13"
)

// goldenIndexFiles writes the golden index's image descriptions into a
// fixture store below root and returns the index.
func goldenIndexFiles(t *testing.T, root string) *description.Index {
	t.Helper()
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	amd := goldenImage(created)
	arm := goldenImage(created)
	arm.Architecture, arm.Variant = "arm64", "v8"
	arm.Annotations = map[string]string{ocispec.AnnotationSource: "https://example.com/golden", ocispec.AnnotationVersion: "1"}
	arm.Version = arm.NeededVersion()
	idx := &description.Index{Version: description.Version, Name: "golden", Tag: "v1",
		Annotations: map[string]string{ocispec.AnnotationRevision: "0123456789abcdef"}}
	if err := os.MkdirAll(filepath.Join(root, layers.StoreDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, img := range []*description.Image{amd, arm} {
		p := layers.StoreDir + "/" + []string{"0d", "0f"}[i] + "000000000000000000000000000000-image-golden.json"
		b, err := description.Marshal(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := description.ManifestFor(p, img)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, m)
	}
	return idx
}

// TestIndexGolden pins the manifest of an image with annotations and the
// index's encoding; the nix: source serves that index, each image's
// manifest by digest, and refuses any other digest.
func TestIndexGolden(t *testing.T) {
	root := t.TempDir()
	idx := goldenIndexFiles(t, root)
	if got := idx.Manifests[1].Digest; got != goldenAnnotatedManifest {
		t.Errorf("manifest of the annotated image: %s, want %s", got, goldenAnnotatedManifest)
	}
	enc, err := idx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if enc.Digest != goldenIndex {
		t.Errorf("index: %s, want %s\n%s", enc.Digest, goldenIndex, enc.Bytes)
	}
	idx.Digest = enc.Digest
	b, err := description.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := transport.NewReference(file, layers.WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Built() != nil || ref.Image() != nil || ref.Index() == nil || ref.Index().Digest != enc.Digest {
		t.Fatalf("reference of an index: built %v, index %v", ref.Built(), ref.Index())
	}
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	man, mt, err := src.GetManifest(context.Background(), nil)
	if err != nil || mt != ocispec.MediaTypeImageIndex || digest.FromBytes(man) != enc.Digest {
		t.Fatalf("GetManifest(nil) = %s %s, %v; want the index", mt, digest.FromBytes(man), err)
	}
	for i, m := range idx.Manifests {
		got, mt, err := src.GetManifest(context.Background(), &m.Digest)
		if err != nil || mt != ocispec.MediaTypeImageManifest || digest.FromBytes(got) != m.Digest {
			t.Errorf("GetManifest(manifests[%d]) = %s %s, %v", i, mt, digest.FromBytes(got), err)
		}
	}
	other := digest.FromString("other")
	if _, _, err := src.GetManifest(context.Background(), &other); err == nil {
		t.Error("GetManifest of a digest not in the index succeeded")
	}
	if _, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: other}, nil); err == nil {
		t.Error("GetBlob of a digest in no image succeeded")
	}
}
