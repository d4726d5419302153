package nixapp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	attrs := filepath.Join(dir, ".attrs.json")
	js := `{"outputs":{"out":"` + out + `"},"program":"push","script":"#!/bin/sh\nexec true \"$@\"\n","system":"x86_64-linux"}`
	if err := os.WriteFile(attrs, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	name, err := WriteFile(attrs)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, "bin", "push"); name != want {
		t.Errorf("wrote %s, want %s", name, want)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("mode %v, want 0555", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(name)
	if string(b) != "#!/bin/sh\nexec true \"$@\"\n" {
		t.Errorf("contents %q", b)
	}
}

func TestWriteErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct {
		name, out, program, script, want string
	}{
		{"no out", "", "push", "#!/bin/sh\n", "outputs.out"},
		{"no program", out, "", "#!/bin/sh\n", "plain file name"},
		{"slash", out, "../push", "#!/bin/sh\n", "plain file name"},
		{"no shebang", out, "push", "exec true\n", `"#!"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Write(tc.out, tc.program, tc.script)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := WriteFile(filepath.Join(out, "missing.json")); err == nil {
		t.Fatal("missing attributes file: no error")
	}
}
