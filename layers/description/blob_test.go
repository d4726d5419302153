package description

import (
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	testBase = "/nix/store/00000000000000000000000000000000-image-base"
	gz       = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// blobLayer makes the example's first layer a blob layer.
func blobLayer(m map[string]any) {
	l := layer0(m)
	for _, k := range []string{"paths", "perms", "mtime", "compression"} {
		delete(l, k)
	}
	l["blob"] = map[string]any{"path": testBase, "file": "blobs/sha256/" + strings.Repeat("a", 64), "repository": "registry.example.com/base"}
	l["mediaType"] = gz
	l["diffID"] = "sha256:" + strings.Repeat("b", 64)
	m["version"] = 3
}

// TestBlobLayers: a blob layer is version 3's "blob layers"; every field
// it may not have, and every bad value, is refused naming the field.
func TestBlobLayers(t *testing.T) {
	img, err := Parse(edit(t, blobLayer))
	if err != nil {
		t.Fatal(err)
	}
	if img.NeededVersion() != 3 || img.Layers[0].Blob.Repository != "registry.example.com/base" {
		t.Fatalf("parsed %+v, version needed %d", img.Layers[0], img.NeededVersion())
	}
	b, err := Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{`"paths"`, `"mtime"`} {
		if strings.Count(string(b), absent) != strings.Count(string(example(t)), absent)-1 {
			t.Errorf("the blob layer is written with %s:\n%s", absent, b)
		}
	}
	if again, err := Parse(b); err != nil || again.Layers[0].Blob.File != img.Layers[0].Blob.File {
		t.Fatalf("round trip: %v", err)
	}

	set := func(k string, v any) func(m map[string]any) {
		return func(m map[string]any) { blobLayer(m); layer0(m)[k] = v }
	}
	setBlob := func(k string, v any) func(m map[string]any) {
		return func(m map[string]any) { blobLayer(m); layer0(m)["blob"].(map[string]any)[k] = v }
	}
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"version 2", func(m map[string]any) { blobLayer(m); m["version"] = 2 }, "version: 2, but it uses features of version 3 (blob layers)"},
		{"paths", set("paths", []any{map[string]any{"path": testBase}}), "layers[0].paths: a blob layer has none"},
		{"mtime", set("mtime", "1970-01-01T00:00:01Z"), "layers[0].mtime: a blob layer has none"},
		{"compression", set("compression", map[string]any{"algorithm": "gzip"}), "layers[0].compression: a blob layer has none"},
		{"docker media type", set("mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"), "layers[0].mediaType: \"application/vnd.docker.image.rootfs.diff.tar.gzip\" is not an OCI layer type"},
		{"uncompressed with another diffID", set("mediaType", ocispec.MediaTypeImageLayer), "layers[0].diffID: "},
		{"path inside a store path", setBlob("path", testBase+"/blobs"), "layers[0].blob.path: "},
		{"file climbing out", setBlob("file", "../x"), "layers[0].blob.file: \"../x\" is not a clean relative path"},
		{"absolute file", setBlob("file", "/etc/passwd"), "layers[0].blob.file: "},
		{"missing file", setBlob("file", ""), "layers[0].blob.file: missing"},
		{"short repository", setBlob("repository", "busybox"), "layers[0].blob.repository: \"busybox\" is not a fully qualified repository name"},
		{"repository with a tag", setBlob("repository", "registry.example.com/base:1"), "layers[0].blob.repository: "},
		{"unknown blob field", setBlob("sha", "x"), "layers[0].blob.sha: unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(edit(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing\n  %s", err, c.want)
			}
		})
	}
}

// TestBaseHistory: the config's history is the base's, then one entry per
// layer after the base's.
func TestBaseHistory(t *testing.T) {
	img, err := Parse(edit(t, withLayers(3)))
	if err != nil {
		t.Fatal(err)
	}
	img.Version = 3
	img.BaseHistory = []ocispec.History{{CreatedBy: "base 1"}, {CreatedBy: "ENV X=1", EmptyLayer: true}, {CreatedBy: "base 2"}}
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	h := img.OCIConfig().History
	var got []string
	for _, e := range h {
		got = append(got, e.CreatedBy)
	}
	want := []string{"base 1", "ENV X=1", "base 2", img.Layers[2].History.CreatedBy}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("history %q, want %q", got, want)
	}
	img.BaseHistory = append(img.BaseHistory, ocispec.History{}, ocispec.History{})
	if err := img.Validate(); err == nil || !strings.Contains(err.Error(), "baseHistory: 4 entries describe layers, but the image has 3 layers") {
		t.Errorf("too long a base history: %v", err)
	}
	img.BaseHistory = []ocispec.History{{CreatedBy: "base"}}
	img.Version = 2
	if err := img.Validate(); err == nil || !strings.Contains(err.Error(), "(blob layers)") {
		t.Errorf("baseHistory in version 2: %v", err)
	}
}
