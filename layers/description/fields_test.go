package description

import (
	// Links sha512 in, as it is in nixpush (TLS needs it): go-digest then
	// accepts sha512 digests as valid, and only Validate's own check is
	// left to refuse them.
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/internal/testenv"
)

// withLayers makes the example's layers n copies of its first layer, each
// with its own digest.
func withLayers(n int) func(m map[string]any) {
	return func(m map[string]any) {
		b, err := json.Marshal(layer0(m))
		if err != nil {
			panic(err)
		}
		var ls []any
		for i := range n {
			var l map[string]any
			if err := json.Unmarshal(b, &l); err != nil {
				panic(err)
			}
			d := digest.FromString(fmt.Sprint(i)).String()
			l["digest"], l["diffID"] = d, d
			ls = append(ls, l)
		}
		m["layers"] = ls
	}
}

// then runs edits in order.
func then(fs ...func(m map[string]any)) func(m map[string]any) {
	return func(m map[string]any) {
		for _, f := range fs {
			f(m)
		}
	}
}

func path(m map[string]any, layer, i int) map[string]any {
	return m["layers"].([]any)[layer].(map[string]any)["paths"].([]any)[i].(map[string]any)
}

func perm0(m map[string]any) map[string]any {
	return layer0(m)["perms"].([]any)[0].(map[string]any)
}

// TestErrorsNameTheFullPath: every error names the value at fault with its
// indices, in the description's own terms, and what is expected.
func TestErrorsNameTheFullPath(t *testing.T) {
	sha512 := "sha512:" + strings.Repeat("ab", 64)
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
		is   error
	}{
		{"type error in a nested array element", then(withLayers(4), func(m map[string]any) { path(m, 3, 0)["narSize"] = "big" }),
			"layers[3].paths[0].narSize: expected an integer from 0 to 2^64-1, got JSON string", nil},
		{"negative size", then(withLayers(2), func(m map[string]any) { m["layers"].([]any)[1].(map[string]any)["size"] = 1.5 }),
			"layers[1].size: expected an integer from -2^63 to 2^63-1, got JSON number 1.5", nil},
		{"unknown nested field", then(withLayers(3), func(m map[string]any) { path(m, 2, 1)["fooo"] = 1 }),
			"layers[2].paths[1].fooo: unknown field", nil},
		{"unknown history field", func(m map[string]any) { layer0(m)["history"].(map[string]any)["author"] = "x" },
			"layers[0].history.author: unknown field", nil},
		{"bad layer time", then(withLayers(2), func(m map[string]any) { m["layers"].([]any)[1].(map[string]any)["mtime"] = "yesterday" }),
			`layers[1].mtime: "yesterday" is not an RFC 3339 time such as 2006-01-02T15:04:05Z`, nil},
		{"bad created", func(m map[string]any) { m["created"] = "yesterday" },
			`created: "yesterday" is not an RFC 3339 time`, nil},
		{"number for a time", func(m map[string]any) { m["created"] = 0 },
			`created: expected an RFC 3339 time string, got JSON number 0`, nil},
		{"label of the wrong type", func(m map[string]any) { m["config"].(map[string]any)["Labels"] = map[string]any{"org.example.n": 1} },
			`config.Labels["org.example.n"]: expected a string, got JSON number 1`, nil},
		{"argument of the wrong type", func(m map[string]any) { m["config"].(map[string]any)["Cmd"] = []any{"-c", 2} },
			`config.Cmd[1]: expected a string, got JSON number 2`, nil},
		{"digest algorithm sha512", func(m map[string]any) { layer0(m)["digest"], layer0(m)["diffID"] = sha512, sha512 },
			"layers[0].digest: " + sha512 + ": algorithm \"sha512\" is not supported", nil},
		{"diffID algorithm sha512", func(m map[string]any) { layer0(m)["diffID"] = sha512 },
			"layers[0].diffID: " + sha512 + ": algorithm \"sha512\" is not supported", nil},
		{"arm64 variant v7", func(m map[string]any) { m["architecture"], m["variant"] = "arm64", "v7" },
			`variant: "v7" is not a CPU variant of arm64 (v8, v9, v8.0 … v9.9)`, nil},
		{"arm variant 7", func(m map[string]any) { m["architecture"], m["variant"] = "arm", "7" },
			`variant: "7" is not a CPU variant of arm (v5 to v8)`, nil},
		{"amd64 variant v5", func(m map[string]any) { m["variant"] = "v5" },
			`variant: "v5" is not a CPU variant of amd64 (v1 to v4)`, nil},
		{"variant with a slash", func(m map[string]any) { m["architecture"], m["variant"] = "riscv64", "linux/rva22u64" },
			`variant: "linux/rva22u64" is not a CPU variant such as v8`, nil},
		{"uid over 2^32-1", func(m map[string]any) { perm0(m)["uid"] = 1 << 32 },
			"layers[0].perms[0].uid: 4294967296 is outside 0…4294967295", nil},
		{"gid negative", func(m map[string]any) { perm0(m)["gid"] = -1 },
			"layers[0].perms[0].gid: -1 is outside 0…4294967295", nil},
		{"128 layers", withLayers(MaxLayers + 1),
			"layers: 128 layers, more than the 127 an overlay filesystem can stack", ErrTooManyLayers},
		{"config over 4 MiB", func(m map[string]any) {
			m["config"].(map[string]any)["Env"] = []any{"BIG=" + strings.Repeat("x", MaxConfigSize)}
		}, "config.Env: ", ErrTooLarge},
		{"history over 4 MiB", then(withLayers(2), func(m map[string]any) {
			for _, l := range m["layers"].([]any) {
				l.(map[string]any)["history"] = map[string]any{"comment": strings.Repeat("x", MaxConfigSize/2)}
			}
		}), "layers[].history: ", ErrTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(edit(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing\n  %s", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
		})
	}
}

// TestLimitsAccepted: the values at the limits are accepted.
func TestLimitsAccepted(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{"127 layers", withLayers(MaxLayers)},
		{"uid and gid 2^32-1", func(m map[string]any) { perm0(m)["uid"], perm0(m)["gid"] = 1<<32-1, 1<<32-1 }},
		{"arm v7", func(m map[string]any) { m["architecture"], m["variant"] = "arm", "v7" }},
		{"arm64 v8.2", func(m map[string]any) { m["architecture"], m["variant"] = "arm64", "v8.2" }},
		{"amd64 v3", func(m map[string]any) { m["variant"] = "v3" }},
		{"riscv64 rva22u64", func(m map[string]any) { m["architecture"], m["variant"] = "riscv64", "rva22u64" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(edit(t, c.edit)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConfigSizeBoundary: a config of exactly MaxConfigSize bytes, as
// ConfigJSON encodes it, is accepted and one byte more is not.
func TestConfigSizeBoundary(t *testing.T) {
	img, err := Parse(example(t))
	if err != nil {
		t.Fatal(err)
	}
	img.Config.Env = append(img.Config.Env, "PAD=")
	b, err := img.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	img.Config.Env[len(img.Config.Env)-1] += strings.Repeat("x", MaxConfigSize-len(b))
	if b, _ := img.ConfigJSON(); len(b) != MaxConfigSize {
		t.Fatalf("padded config is %d bytes, want %d", len(b), MaxConfigSize)
	}
	if err := img.Validate(); err != nil {
		t.Fatalf("config of exactly %d bytes: %v", MaxConfigSize, err)
	}
	img.Config.Env[len(img.Config.Env)-1] += "x"
	if err := img.Validate(); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "config.Env") {
		t.Fatalf("config of %d bytes: %v, want ErrTooLarge naming config.Env", MaxConfigSize+1, err)
	}
}

// TestLayerFileTooManyLayers: a layer file can hold no more layers than an
// image.
func TestLayerFileTooManyLayers(t *testing.T) {
	for _, n := range []int{MaxLayers, MaxLayers + 1} {
		m := map[string]any{}
		if err := json.Unmarshal(example(t), &m); err != nil {
			t.Fatal(err)
		}
		withLayers(n)(m)
		b, _ := json.Marshal(map[string]any{"version": 1, "layers": m["layers"]})
		p := filepath.Join(t.TempDir(), "layers.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadLayerFile(p)
		if n == MaxLayers && err != nil {
			t.Errorf("%d layers: %v", n, err)
		}
		if n > MaxLayers && (!errors.Is(err, ErrTooManyLayers) || !strings.Contains(err.Error(), p+": layers: 128 layers")) {
			t.Errorf("%d layers: %v, want ErrTooManyLayers naming the file", n, err)
		}
	}
}

// TestReadSpecialFiles: a description or layer file that is a device, a
// FIFO, a directory or too big is refused at once, naming the file.
func TestReadSpecialFiles(t *testing.T) {
	fifo, big := testenv.UntrustedFiles(t, MaxFileSize+1)
	dir := t.TempDir()
	read := map[string]func(string) error{
		"ReadFile":      func(n string) error { _, err := ReadFile(n); return err },
		"ReadLayerFile": func(n string) error { _, err := ReadLayerFile(n); return err },
	}
	for _, c := range []struct{ file, want string }{
		{"/dev/zero", "not a regular file (a character device)"},
		{fifo, "not a regular file (a FIFO)"},
		{dir, "not a regular file (a directory)"},
		{big, "file too large: larger than 67108864 bytes (64 MiB)"},
	} {
		for name, f := range read {
			t.Run(name+" "+filepath.Base(c.file), func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- f(c.file) }()
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), c.file+": "+c.want) {
						t.Fatalf("error %v, want one containing %q", err, c.file+": "+c.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s(%s) still reading after 10s", name, c.file)
				}
			})
		}
	}
}
