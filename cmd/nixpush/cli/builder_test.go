package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuilderAttrsFile checks where the builder commands find
// .attrs.json: --attrs, else $NIX_BUILD_TOP, else a clear error.
func TestBuilderAttrsFile(t *testing.T) {
	top := t.TempDir()
	out := filepath.Join(t.TempDir(), "config.json")
	attrs := `{"outputs": {"out": "` + out + `"}, "config": {"Entrypoint": ["/bin/sh"]}}`
	if err := os.WriteFile(filepath.Join(top, ".attrs.json"), []byte(attrs), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, []byte(strings.Replace(attrs, "/bin/sh", "/bin/other", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, top string
		args      []string
		want      string // in the output file, or in the error
		fails     bool
	}{
		{"NIX_BUILD_TOP", top, nil, `"/bin/sh"`, false},
		{"--attrs wins", top, []string{"--attrs", other}, `"/bin/other"`, false},
		{"neither", "", nil, "NIX_BUILD_TOP is not set", true},
		{"layer, missing file", "", []string{"--attrs", filepath.Join(top, "none.json")}, "none.json", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NIX_BUILD_TOP", tt.top)
			os.Remove(out)
			cmd := "write-config"
			if strings.HasPrefix(tt.name, "layer") {
				cmd = "layer"
			}
			msg, err := runCLI(t, append([]string{cmd}, tt.args...)...)
			if tt.fails {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, msg)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("output %s does not contain %s", b, tt.want)
			}
		})
	}
}
