package description

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func example(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/image.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes the example into generic JSON, applies f, and re-encodes it.
func edit(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(example(t), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layer0(m map[string]any) map[string]any { return m["layers"].([]any)[0].(map[string]any) }

func TestParseExample(t *testing.T) {
	img, err := Parse(example(t))
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "hello" || img.Config.Entrypoint[0] != "/nix/store/0000000000000000000000000000000a-busybox/bin/sh" ||
		len(img.Layers) != 1 || img.Layers[0].Paths[1].Rewrite != "/" || img.Layers[0].Perms[0].Mode != "1777" ||
		img.Config.StopSignal != "SIGTERM" || img.Layers[0].History.Comment != "busybox" {
		t.Fatalf("parsed wrongly: %+v", img)
	}
	// Marshal then Parse is the identity.
	out, err := Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := Marshal(again)
	if !bytes.Equal(out, out2) {
		t.Fatalf("round trip changed the description:\n%s\n%s", out, out2)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  []byte
		want string
	}{
		{"not JSON", []byte("{"), "malformed JSON"},
		{"trailing data", append(example(t), []byte("{}")...), "after the top-level value"},
		{"unknown version", edit(t, func(m map[string]any) { m["version"] = 4 }), "version: unsupported description version 4 (this nixpush reads versions 1 to 3)"},
		{"compression in version 1", edit(t, func(m map[string]any) {
			l := m["layers"].([]any)[0].(map[string]any)
			l["compression"] = map[string]any{"algorithm": "zstd"}
			l["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
		}), "version: 1, but it uses features of version 2 (compression)"},
		{"compressed layer with a tar media type", edit(t, func(m map[string]any) {
			m["version"] = 2
			l := m["layers"].([]any)[0].(map[string]any)
			l["compression"] = map[string]any{"algorithm": "gzip"}
		}), `layers[0].mediaType: "application/vnd.oci.image.layer.v1.tar", want "application/vnd.oci.image.layer.v1.tar+gzip"`},
		{"unknown compression", edit(t, func(m map[string]any) {
			m["version"] = 2
			l := m["layers"].([]any)[0].(map[string]any)
			l["compression"] = map[string]any{"algorithm": "xz"}
		}), `layers[0].compression.algorithm: "xz"`},
		{"uncompressed layer whose diffID differs", edit(t, func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["diffID"] = "sha256:" + strings.Repeat("1", 64)
		}), `layers[0].diffID: sha256:1111`},
		{"missing version", edit(t, func(m map[string]any) { delete(m, "version") }), "version: missing"},
		{"unknown field", edit(t, func(m map[string]any) { m["entrypoint"] = "x" }), `entrypoint: unknown field`},
		{"unknown config field", edit(t, func(m map[string]any) { m["config"].(map[string]any)["Entrypiont"] = []string{"x"} }), `config.Entrypiont: unknown field`},
		{"wrong type", edit(t, func(m map[string]any) { layer0(m)["size"] = "big" }), "layers[0].size: expected an integer from -2^63 to 2^63-1, got JSON string"},
		{"missing architecture", edit(t, func(m map[string]any) { delete(m, "architecture") }), "architecture: missing"},
		{"bad os", edit(t, func(m map[string]any) { m["os"] = "Linux!" }), "os:"},
		{"missing created", edit(t, func(m map[string]any) { delete(m, "created") }), "created: missing"},
		{"no layers", edit(t, func(m map[string]any) { m["layers"] = []any{} }), "layers: an image needs at least one layer"},
		{"missing digest", edit(t, func(m map[string]any) { delete(layer0(m), "digest") }), "layers[0].digest: missing"},
		{"bad digest", edit(t, func(m map[string]any) { layer0(m)["digest"] = "sha256:xyz" }), "layers[0].digest:"},
		{"diffID differs", edit(t, func(m map[string]any) {
			layer0(m)["diffID"] = "sha256:" + strings.Repeat("1", 64)
		}), "layers[0].diffID"},
		{"zero size", edit(t, func(m map[string]any) { layer0(m)["size"] = 0 }), "layers[0].size"},
		{"gzip media type", edit(t, func(m map[string]any) { layer0(m)["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip" }), "layers[0].mediaType"},
		{"missing mtime", edit(t, func(m map[string]any) { delete(layer0(m), "mtime") }), "layers[0].mtime"},
		{"no paths", edit(t, func(m map[string]any) { layer0(m)["paths"] = []any{} }), "layers[0].paths"},
		{"not a store path", edit(t, func(m map[string]any) {
			layer0(m)["paths"].([]any)[0].(map[string]any)["path"] = "/usr/lib"
		}), "layers[0].paths[0].path: \"/usr/lib\" is not below /nix/store"},
		{"bad store hash", edit(t, func(m map[string]any) {
			layer0(m)["paths"].([]any)[0].(map[string]any)["path"] = "/nix/store/eeee-x"
		}), "layers[0].paths[0].path"},
		{"bad narHash", edit(t, func(m map[string]any) {
			layer0(m)["paths"].([]any)[0].(map[string]any)["narHash"] = "md5:abc"
		}), "layers[0].paths[0].narHash"},
		{"relative rewrite", edit(t, func(m map[string]any) {
			layer0(m)["paths"].([]any)[1].(map[string]any)["rewrite"] = "root"
		}), "layers[0].paths[1].rewrite"},
		{"bad perms regex", edit(t, func(m map[string]any) {
			layer0(m)["perms"].([]any)[0].(map[string]any)["regex"] = "(["
		}), "layers[0].perms[0].regex"},
		{"duplicate layer", edit(t, func(m map[string]any) {
			m["layers"] = append(m["layers"].([]any), m["layers"].([]any)[0])
		}), "layers[1].digest: sha256:d856b497c409175ffe08109bbc846e6ad5bd6c69603ef9dde0be5a08e3d4e0aa is also layers[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.doc)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestErrVersionIs(t *testing.T) {
	_, err := Parse(edit(t, func(m map[string]any) { m["version"] = 7 }))
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("%v is not ErrVersion", err)
	}
}

func TestReadFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "broken-image.json")
	if err := os.WriteFile(p, []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "version") {
		t.Fatalf("error %v does not name the file and field", err)
	}
}

func TestReadLayerFile(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(example(t), &m); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, _ := json.Marshal(map[string]any{"version": 1, "layers": m["layers"]})
	p := filepath.Join(dir, "layers.json")
	if err := os.WriteFile(p, good, 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := ReadLayerFile(p)
	if err != nil || len(lf.Layers) != 1 {
		t.Fatalf("ReadLayerFile: %v %+v", err, lf)
	}
	delete(layer0(m), "size")
	bad, _ := json.Marshal(map[string]any{"version": 1, "layers": m["layers"]})
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLayerFile(p); err == nil || !strings.Contains(err.Error(), "layers[0].size") {
		t.Fatalf("error %v does not name layers[0].size", err)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts survives a
// Marshal/Parse round trip unchanged.
func FuzzParse(f *testing.F) {
	f.Add(example(f))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"architecture":"amd64","os":"linux","created":"2020-01-01T00:00:00Z","layers":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Parse(b)
		if err != nil {
			return
		}
		out, err := Marshal(img)
		if err != nil {
			t.Fatalf("accepted description does not marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled description does not parse: %v\n%s", err, out)
		}
		out2, _ := Marshal(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip is not stable:\n%s\n%s", out, out2)
		}
	})
}
