package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/cmd/nixpush/cli"
	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// runCLI executes the nixpush command line in-process.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := cli.New()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// layeredImage builds nix/examples' layered image with the real nix-build.
func layeredImage(t *testing.T) string {
	t.Helper()
	testenv.RequireNix(t)
	repo := testenv.RepoRoot(t)
	out, err := testenv.NixBuild(t, filepath.Join(repo, "nix", "examples"), "-A", "layered",
		"--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyNixBuiltImage(t *testing.T) {
	image := layeredImage(t)
	img, err := description.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "verify", "nix:"+image)
	if err != nil {
		t.Fatalf("verify of a fresh build: %v\n%s", err, out)
	}
	for i, l := range img.Layers {
		if !strings.Contains(out, "layer "+string(rune('0'+i))+" "+string(l.Digest)+" ok") {
			t.Errorf("output does not report layer %d ok:\n%s", i, out)
		}
	}

	// A description whose last layer's recorded digest and one store path's
	// NAR hash disagree with the store: verify names that layer and that
	// path, and only that path.
	last := len(img.Layers) - 1
	changed := img.Layers[last].Paths[0].Path
	var raw map[string]any
	b, _ := os.ReadFile(image)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	l := raw["layers"].([]any)[last].(map[string]any)
	wrong := "sha256:" + strings.Repeat("ab", 32)
	l["digest"], l["diffID"] = wrong, wrong
	l["paths"].([]any)[0].(map[string]any)["narHash"] = "sha256:" + strings.Repeat("1", 52)
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "verify", tampered)
	if err == nil {
		t.Fatalf("verify accepted a description that does not match the store:\n%s", out)
	}
	msg := err.Error()
	for _, want := range []string{tampered, "layers[" + string(rune('0'+last)) + "] (" + wrong + ") does not match its description", changed} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	for _, p := range img.Layers[0].Paths {
		if p.Path != changed && strings.Contains(msg, p.Path) {
			t.Errorf("error names unchanged store path %s:\n%s", p.Path, msg)
		}
	}
}

func TestVerifyBadInput(t *testing.T) {
	dir := t.TempDir()
	future := filepath.Join(dir, "future.json")
	if err := os.WriteFile(future, fmt.Appendf(nil, `{"version": %d}`, description.Version+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing file", []string{"verify", filepath.Join(dir, "nope.json")}, []string{"nope.json", "no such file"}},
		{"unknown version", []string{"verify", future}, []string{future, "version", "unsupported"}},
		{"no argument", []string{"verify"}, []string{"accepts between 1 and 2 arg"}},
		{"not a registry", []string{"verify", future, "oci:" + dir}, []string{"oci:" + dir, "docker://"}},
		{"registry flag without a registry", []string{"verify", "--password-stdin", future}, []string{"--password-stdin", future, "docker://"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCLI(t, c.args...)
			if err == nil {
				t.Fatalf("no error:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tar format 1") || !strings.Contains(out, "description version 3") ||
		layers.FormatVersion != 1 || description.Version != 3 {
		t.Fatalf("version output: %q", out)
	}
}
