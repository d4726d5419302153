// Package nix_test builds nix/default.nix and nix/examples with the real
// nix-build and checks what comes out against the layers package.
package nix_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// env is what every Nix expression of these tests takes.
type env struct {
	repo, nixpush, busybox string
}

func setup(t *testing.T) env {
	t.Helper()
	testenv.RequireNix(t)
	return env{
		repo:    testenv.RepoRoot(t),
		nixpush: testenv.NixpushDir(t),
		busybox: testenv.BusyboxDir(t),
	}
}

func (e env) args() []string {
	return []string{"--arg", "nixpush", e.nixpush, "--arg", "busybox", e.busybox}
}

// example builds an attribute of nix/examples.
func (e env) example(t *testing.T, attr string) string {
	t.Helper()
	out, err := testenv.NixBuild(t, append([]string{filepath.Join(e.repo, "nix", "examples"), "-A", attr}, e.args()...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// expr writes a Nix file whose body sees np (nix/default.nix), ex
// (nix/examples) and bb (busybox), and builds attr of it.
func (e env) expr(t *testing.T, body, attr string) (string, error) {
	t.Helper()
	src := fmt.Sprintf(`{ nixpush, busybox }:
let
  np = import %q { inherit nixpush; };
  ex = import %q { inherit nixpush busybox; };
  bb = ex.busybox;
in
%s
`, filepath.Join(e.repo, "nix"), filepath.Join(e.repo, "nix", "examples"), body)
	f := filepath.Join(t.TempDir(), "test.nix")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{f}, e.args()...)
	if attr != "" {
		args = append(args, "-A", attr)
	}
	return testenv.NixBuild(t, args...)
}

// check re-hashes every layer of a description from /nix/store, and checks
// that the output refers to exactly the store paths it lists. It returns
// the layers.
func check(t *testing.T, out string, image bool) []description.Layer {
	t.Helper()
	var ls []description.Layer
	var sbomPath string
	if image {
		img, err := description.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ls = img.Layers
		if img.SBOM != nil {
			// The description refers to its SBOM too (the "sbom" output).
			sbomPath = img.SBOM.Path
		}
	} else {
		lf, err := description.ReadLayerFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ls = lf.Layers
	}
	listed := map[string]bool{}
	if sbomPath != "" {
		listed[sbomPath] = true
	}
	for i, l := range ls {
		d, n, err := layers.Digest(context.Background(), l.Spec)
		if err != nil {
			t.Fatalf("%s: layer %d: %v", out, i, err)
		}
		if d != l.Digest || n != l.Size {
			t.Errorf("%s: layer %d recorded as %s (%d bytes), hashes to %s (%d bytes) now", out, i, l.Digest, l.Size, d, n)
		}
		for _, p := range l.Paths {
			listed[p.Path] = true
		}
	}
	refs, err := testenv.Nix(t, "nix-store", "-q", "--references", out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(refs)
	sort.Strings(got)
	var want []string
	for p := range listed {
		want = append(want, p)
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s refers to\n  %v\nbut lists\n  %v", out, got, want)
	}
	return ls
}

// names renders each layer's paths as names ("busybox", "rootfs@/").
func names(ls []description.Layer) [][]string {
	var out [][]string
	for _, l := range ls {
		var ns []string
		for _, p := range l.Paths {
			n := filepath.Base(p.Path)[33:]
			if p.Rewrite != "" {
				n += "@" + p.Rewrite
			}
			ns = append(ns, n)
		}
		out = append(out, ns)
	}
	return out
}

func TestExamples(t *testing.T) {
	e := setup(t)
	tests := []struct {
		attr  string
		image bool
		want  [][]string
	}{
		{"minimal", true, [][]string{{"busybox", "rootfs@/"}}},
		{"base", false, [][]string{{"busybox"}}},
		{"layered", true, [][]string{{"busybox"}, {"hello", "rootfs@/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			out := e.example(t, tt.attr)
			ls := check(t, out, tt.image)
			if got := names(ls); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("layers = %v, want %v", got, tt.want)
			}
			// Same inputs, same path; and rebuilding gives the same bytes.
			if again := e.example(t, tt.attr); again != out {
				t.Errorf("second build gave %s, first %s", again, out)
			}
			args := append([]string{"--check", filepath.Join(e.repo, "nix", "examples"), "-A", tt.attr}, e.args()...)
			if _, err := testenv.NixBuild(t, args...); err != nil {
				t.Errorf("rebuild differs: %v", err)
			}
		})
	}
}

// TestStorePathArguments passes nixpush and busybox as plain store path
// strings (--argstr), as a script that ran nix-store --add would.
func TestStorePathArguments(t *testing.T) {
	e := setup(t)
	np, err := testenv.Nix(t, "nix-store", "--add", e.nixpush)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := testenv.Nix(t, "nix-store", "--add", e.busybox)
	if err != nil {
		t.Fatal(err)
	}
	out, err := testenv.NixBuild(t, filepath.Join(e.repo, "nix", "examples"), "-A", "minimal",
		"--argstr", "nixpush", np, "--argstr", "busybox", bb)
	if err != nil {
		t.Fatal(err)
	}
	check(t, out, true)
}

func TestImageTag(t *testing.T) {
	e := setup(t)
	eval := func(attr string) string {
		t.Helper()
		expr := fmt.Sprintf("(import %q { nixpush = %s; busybox = %s; }).%s",
			filepath.Join(e.repo, "nix", "examples"), e.nixpush, e.busybox, attr)
		s, err := testenv.Nix(t, "nix-instantiate", "--eval", "-E", expr)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("%s = %s: %v", attr, s, err)
		}
		return v
	}
	out := e.example(t, "minimal")
	img, err := description.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if img.Tag != "" || img.Name != "minimal" {
		t.Errorf("minimal: name %q tag %q, want no tag in the description", img.Name, img.Tag)
	}
	if got, want := eval("minimal.imageTag"), filepath.Base(out)[:32]; got != want {
		t.Errorf("minimal.imageTag = %q, want the hash part %q", got, want)
	}
	if got := eval("minimal.imageName"); got != "minimal" {
		t.Errorf("minimal.imageName = %q", got)
	}
	layered, err := description.ReadFile(e.example(t, "layered"))
	if err != nil {
		t.Fatal(err)
	}
	if layered.Tag != "v1" || eval("layered.imageTag") != "v1" {
		t.Errorf("layered: tag %q, imageTag %q, want v1", layered.Tag, eval("layered.imageTag"))
	}
	if want := filepath.Base(e.example(t, "hello")); !strings.Contains(layered.Config.Entrypoint[0], want) {
		t.Errorf("layered entrypoint %v does not name %s", layered.Config.Entrypoint, want)
	}
}

func TestLayerComposition(t *testing.T) {
	e := setup(t)
	body := `rec {
  a = np.buildLayer { deps = [ bb ]; };
  b = np.buildLayer { deps = [ ex.hello ]; };
  c = np.buildLayer { deps = [ ex.hello ]; layers = [ a ]; };
  siblings = np.buildImage { name = "siblings"; layers = [ a b ]; };
  stacked = np.buildImage { name = "stacked"; layers = [ c a ]; };
  popular = np.buildImage {
    name = "popular";
    copyToRoot = [ ex.rootfs ];
    config.Entrypoint = [ "${ex.hello}/bin/hello" ];
    maxLayers = 3;
  };
}`
	tests := []struct {
		attr  string
		image bool
		want  [][]string
	}{
		{"b", false, [][]string{{"busybox", "hello"}}},
		{"c", false, [][]string{{"busybox"}, {"hello"}}},
		// b's layer loses busybox to a and is hashed again.
		{"siblings", true, [][]string{{"busybox"}, {"hello"}}},
		// a's layer is already c's first one: kept once.
		{"stacked", true, [][]string{{"busybox"}, {"hello"}}},
		// busybox has two ancestors, hello none; rootfs, only at /, joins the
		// last computed layer.
		{"popular", true, [][]string{{"busybox"}, {"hello", "rootfs@/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			out, err := e.expr(t, body, tt.attr)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(check(t, out, tt.image)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("layers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	e := setup(t)
	const missing = "/nix/store/00000000000000000000000000000000-missing"
	tests := []struct {
		name, body, want string
	}{
		{"perms regex does not compile",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; perms = [ { path = ex.rootfs; regex = "(tmp"; mode = "1777"; } ]; }`,
			`perms[0].regex: "(tmp"`},
		{"perms mode misspelt",
			`np.buildLayer { deps = [ bb ]; perms = [ { regex = "/tmp"; mdoe = "1777"; } ]; }`,
			`perms[0].mdoe: unknown field`},
		{"missing store path",
			`np.buildLayer { deps = [ "` + missing + `" ]; }`,
			missing},
		{"config names a store path without context",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; config.Entrypoint = [ "` + missing + `/bin/sh" ]; }`,
			"config: names " + missing},
		{"maxLayers below 1",
			`np.buildLayer { deps = [ bb ]; maxLayers = 0; }`,
			"maxLayers must be an integer of at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.expr(t, tt.body, "")
			if err == nil {
				t.Fatalf("built %s, want a failure naming %q", out, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not name %q:\n%v", tt.want, err)
			}
		})
	}
}
