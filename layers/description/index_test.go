package description

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
)

// TestAnnotations: annotations need version 3, go into the manifest with
// created defaulting to the image's, and leave an image without them as it
// was.
func TestAnnotations(t *testing.T) {
	img, err := Parse(example(t))
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := img.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(before.Bytes), "annotations") {
		t.Fatalf("manifest of an image without annotations has some: %s", before.Bytes)
	}

	img.Annotations = map[string]string{"org.opencontainers.image.source": "https://example.com/hello"}
	if err := img.Validate(); err == nil || !strings.Contains(err.Error(), "version: 1, but it uses features of version 3 (annotations)") {
		t.Fatalf("annotations in version 1: %v", err)
	}
	if v := img.NeededVersion(); v != 3 {
		t.Fatalf("NeededVersion %d, want 3", v)
	}
	img.Version = 3
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	_, enc, err := img.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(enc.Bytes, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.opencontainers.image.source":  "https://example.com/hello",
		"org.opencontainers.image.created": img.Created.UTC().Format("2006-01-02T15:04:05Z07:00"),
	}
	if len(m.Annotations) != 2 || m.Annotations[ocispec.AnnotationSource] != want[ocispec.AnnotationSource] || m.Annotations[ocispec.AnnotationCreated] != want[ocispec.AnnotationCreated] {
		t.Fatalf("manifest annotations %v, want %v", m.Annotations, want)
	}
	img.Annotations[ocispec.AnnotationCreated] = "2024-01-02T03:04:05Z"
	_, enc, _ = img.Encode()
	m = ocispec.Manifest{}
	json.Unmarshal(enc.Bytes, &m) //nolint:errcheck // decoded above
	if m.Annotations[ocispec.AnnotationCreated] != "2024-01-02T03:04:05Z" {
		t.Fatalf("an explicit created annotation was replaced: %v", m.Annotations)
	}
	if img.Annotations[ocispec.AnnotationSource] == "" || len(img.Annotations) != 2 {
		t.Fatalf("Manifest changed the description's annotations: %v", img.Annotations)
	}
	img.Annotations[""] = "x"
	if err := img.Validate(); err == nil || !strings.Contains(err.Error(), `annotations[""]`) {
		t.Fatalf("empty key: %v", err)
	}
}

// indexFixture writes an amd64 and an arm64 image description into a
// fixture store and returns an index of them, valid, and the root.
func indexFixture(t *testing.T) (*Index, string) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, layers.StoreDir), 0o755); err != nil {
		t.Fatal(err)
	}
	idx := &Index{Version: Version, Name: "hello", Tag: "v1", Annotations: map[string]string{ocispec.AnnotationVersion: "1.0"}}
	for i, arch := range []string{"amd64", "arm64"} {
		img, err := Parse(example(t))
		if err != nil {
			t.Fatal(err)
		}
		img.Architecture = arch
		b, err := Marshal(img)
		if err != nil {
			t.Fatal(err)
		}
		p := layers.StoreDir + "/" + strings.Repeat("0", 31) + string(rune('a'+i)) + "-image-hello-" + arch + ".json"
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ManifestFor(p, img)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, m)
	}
	e, err := idx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	idx.Digest = e.Digest
	if err := idx.Validate(); err != nil {
		t.Fatal(err)
	}
	return idx, root
}

func TestIndexReadImages(t *testing.T) {
	idx, root := indexFixture(t)
	b, err := Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if !IsIndex(b) || IsIndex(example(t)) {
		t.Fatal("IsIndex does not tell an index from an image")
	}
	name := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIndexFile(name)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := got.ReadImages(layers.WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Architecture != "amd64" || imgs[1].Architecture != "arm64" {
		t.Fatalf("images %+v", imgs)
	}
	var oci ocispec.Index
	e, _ := got.Encode()
	if err := json.Unmarshal(e.Bytes, &oci); err != nil {
		t.Fatal(err)
	}
	if oci.MediaType != ocispec.MediaTypeImageIndex || len(oci.Manifests) != 2 || oci.Manifests[1].Platform.Architecture != "arm64" ||
		oci.Manifests[0].Digest != idx.Manifests[0].Digest || oci.Annotations[ocispec.AnnotationVersion] != "1.0" {
		t.Fatalf("OCI index %s", e.Bytes)
	}
	if _, err := ReadFile(name); err == nil {
		t.Fatal("ReadFile read an index as an image")
	}
	if _, err := ReadIndexFile("testdata/image.json"); err == nil || !strings.Contains(err.Error(), "not an index") {
		t.Fatalf("ReadIndexFile of an image: %v", err)
	}
}

func TestIndexErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(idx *Index, root string)
		want string
		is   error
	}{
		{"version 2", func(idx *Index, _ string) { idx.Version = 2 }, "version: 2, but it uses features of version 3 (index)", nil},
		{"no manifests", func(idx *Index, _ string) { idx.Manifests = nil }, "manifests: an index needs at least one image", nil},
		{"same platform twice", func(idx *Index, _ string) { idx.Manifests[1].Platform.Architecture = "amd64" },
			"manifests[1].platform: linux/amd64 is also the platform of manifests[0] (/nix/store/0000000000000000000000000000000a-image-hello-amd64.json and /nix/store/0000000000000000000000000000000b-image-hello-arm64.json)", nil},
		{"image not a store path", func(idx *Index, _ string) {
			idx.Manifests[0].Image = "/nix/store/" + strings.Repeat("0", 32) + "-x/../y"
		},
			"manifests[0].image: ", nil},
		{"digest of the index", func(idx *Index, _ string) { idx.Annotations["x"] = "y" }, "digest: sha256:", nil},
		{"bad variant", func(idx *Index, _ string) { idx.Manifests[1].Platform.Variant = "v7" }, "manifests[1].platform.variant: ", nil},
		{"wrong manifest digest", func(idx *Index, _ string) {
			idx.Manifests[1].Digest = digest.Digest("sha256:" + strings.Repeat("1", 64))
			idx.Digest = ""
		}, "manifests[1] (/nix/store/0000000000000000000000000000000b-image-hello-arm64.json): the image's manifest is sha256:", ErrIndexMismatch},
		{"wrong platform", func(idx *Index, _ string) {
			idx.Manifests[1].Platform.Architecture = "riscv64"
			idx.Digest = ""
		}, "the image is for linux/arm64, the index says linux/riscv64", ErrIndexMismatch},
		{"image is a symlink", func(idx *Index, root string) {
			p := filepath.Join(root, idx.Manifests[1].Image)
			os.Rename(p, p+".real")                                      //nolint:errcheck // the test fails below if not
			os.Symlink(filepath.Base(idx.Manifests[1].Image)+".real", p) //nolint:errcheck
		}, "manifests[1].image: store path /nix/store/0000000000000000000000000000000b-image-hello-arm64.json: open ", layers.ErrSymlink},
		{"image missing", func(idx *Index, root string) { os.Remove(filepath.Join(root, idx.Manifests[0].Image)) }, //nolint:errcheck
			"manifests[0].image: store path /nix/store/0000000000000000000000000000000a-image-hello-amd64.json", os.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			idx, root := indexFixture(t)
			c.edit(idx, root)
			b, err := Marshal(idx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseIndex(b)
			if err == nil {
				_, err = got.ReadImages(layers.WithRoot(root))
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing\n  %s", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("%v is not %v", err, c.is)
			}
		})
	}
}

// FuzzParseIndex: ParseIndex never panics, whatever it accepts survives a
// Marshal/ParseIndex round trip unchanged, and IsIndex says it is one.
func FuzzParseIndex(f *testing.F) {
	idx := &Index{Version: Version, Name: "x", Annotations: map[string]string{"a": "b"}, Manifests: []IndexManifest{{
		Image: "/nix/store/00000000000000000000000000000000-image-x.json", Digest: digest.FromString("m"), Size: 100,
		Platform: Platform{Architecture: "arm64", OS: "linux", Variant: "v8"},
	}}}
	if e, err := idx.Encode(); err == nil {
		idx.Digest = e.Digest
	}
	if b, err := Marshal(idx); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":3,"manifests":[]}`))
	f.Add([]byte(`{"version":3,"manifests":[{"image":"/nix/store/00000000000000000000000000000000-x","digest":"sha256:","size":1,"platform":{}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b)
		if err != nil {
			return
		}
		if !IsIndex(b) {
			t.Fatalf("accepted index is not IsIndex: %s", b)
		}
		out, err := Marshal(idx)
		if err != nil {
			t.Fatalf("accepted index does not marshal: %v", err)
		}
		again, err := ParseIndex(out)
		if err != nil {
			t.Fatalf("marshalled index does not parse: %v\n%s", err, out)
		}
		if out2, _ := Marshal(again); string(out) != string(out2) {
			t.Fatalf("round trip is not stable:\n%s\n%s", out, out2)
		}
	})
}
