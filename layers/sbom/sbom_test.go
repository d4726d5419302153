package sbom_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/layers/sbom"
)

func TestParseDrvName(t *testing.T) {
	cases := []struct{ in, name, version string }{
		{"hello-2.12.1", "hello", "2.12.1"},
		{"busybox", "busybox", ""},
		{"openssl-3.0.13-dev", "openssl", "3.0.13-dev"},
		{"foo-bar-1.0", "foo-bar", "1.0"},
		{"python3.11-requests-2.31.0", "python3.11-requests", "2.31.0"},
		{"nixpush-layer.json", "nixpush-layer.json", ""},
		{"image-app.json-sbom", "image-app.json-sbom", ""},
		{"glibc-2.38-44-bin", "glibc", "2.38-44-bin"},
		{"foo--1", "foo", "-1"},
		{"trailing-", "trailing-", ""},
		{"x-_y", "x", "_y"},
	}
	var exprs []string
	for _, c := range cases {
		name, version := sbom.ParseDrvName(c.in)
		if name != c.name || version != c.version {
			t.Errorf("ParseDrvName(%q) = %q, %q; want %q, %q", c.in, name, version, c.name, c.version)
		}
		exprs = append(exprs, fmt.Sprintf("%q", c.in))
	}
	// The table is Nix's own answer.
	testenv.Tool(t, "nix-instantiate")
	out, err := testenv.Nix(t, "nix-instantiate", "--eval", "--json", "--strict", "-E", "map builtins.parseDrvName [ "+strings.Join(exprs, " ")+" ]")
	if err != nil {
		t.Fatal(err)
	}
	var nix []struct{ Name, Version string }
	if err := json.Unmarshal([]byte(out), &nix); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		if nix[i].Name != c.name || nix[i].Version != c.version {
			t.Errorf("builtins.parseDrvName %q = %q, %q; the table says %q, %q", c.in, nix[i].Name, nix[i].Version, c.name, c.version)
		}
	}
}

const (
	pathA = "/nix/store/0000000000000000000000000000000a-busybox-1.36.1"
	pathB = "/nix/store/0000000000000000000000000000000b-env"
	pathC = "/nix/store/0000000000000000000000000000000c-app-2.0"
	hashA = "sha256:1xk0ls5ab4xgilxissycz6gz8z0p7iag91fpsxn0r8zga7pg81z5"
	hashB = "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29"
)

func fixture(t *testing.T) (*description.Image, sbom.References) {
	t.Helper()
	img, err := description.ReadFile("../description/testdata/image.json")
	if err != nil {
		t.Fatal(err)
	}
	img.Layers[0].Paths = []layers.Path{
		{Path: pathB, NarHash: hashB, Rewrite: "/"},
		{Path: pathA, NarHash: hashA},
		{Path: pathC, NarHash: "sha256-" + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		{Path: pathB, NarHash: hashB}, // listed twice: one package
	}
	refs := map[string][]string{pathC: {pathA, pathB, pathC, "/nix/store/0000000000000000000000000000000d-not-in-image"}, pathB: {pathA}}
	return img, func(p string) ([]string, bool) { r, ok := refs[p]; return r, ok }
}

// TestSPDX pins the document's bytes (a golden digest) and checks what
// tools-golang reads back.
func TestSPDX(t *testing.T) {
	img, refs := fixture(t)
	m := digest.FromString("manifest")
	b, err := sbom.SPDX(sbom.Input{Image: img, Manifest: m, References: refs})
	if err != nil {
		t.Fatal(err)
	}
	again, err := sbom.SPDX(sbom.Input{Image: img, Manifest: m, References: refs})
	if err != nil || !bytes.Equal(b, again) {
		t.Fatalf("not deterministic: %v", err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Error(err)
	}
	var pkgs, rels []string
	for _, p := range doc.Packages {
		s := fmt.Sprintf("%s %s %s", p.PackageSPDXIdentifier, p.PackageName, p.PackageVersion)
		for _, c := range p.PackageChecksums {
			s += " " + string(c.Algorithm) + ":" + c.Value[:8]
		}
		pkgs = append(pkgs, s)
	}
	for _, r := range doc.Relationships {
		rels = append(rels, fmt.Sprintf("%s %s %s", r.RefA.ElementRefID, r.Relationship, r.RefB.ElementRefID))
	}
	// The hex NAR hashes are what `nix hash to-base16` says.
	wantPkgs := []string{
		"Image hello " + m.String() + " SHA256:" + m.Encoded()[:8],
		"StorePath-0000000000000000000000000000000a busybox 1.36.1 SHA256:e507f4ee",
		"StorePath-0000000000000000000000000000000b env  SHA256:494cdad0",
		"StorePath-0000000000000000000000000000000c app 2.0 SHA256:e3b0c442",
	}
	wantRels := []string{
		"DOCUMENT DESCRIBES Image",
		"Image CONTAINS StorePath-0000000000000000000000000000000a",
		"Image CONTAINS StorePath-0000000000000000000000000000000b",
		"Image CONTAINS StorePath-0000000000000000000000000000000c",
		"StorePath-0000000000000000000000000000000b DEPENDS_ON StorePath-0000000000000000000000000000000a",
		"StorePath-0000000000000000000000000000000c DEPENDS_ON StorePath-0000000000000000000000000000000a",
		"StorePath-0000000000000000000000000000000c DEPENDS_ON StorePath-0000000000000000000000000000000b",
	}
	if strings.Join(pkgs, "\n") != strings.Join(wantPkgs, "\n") {
		t.Errorf("packages:\n%s\nwant\n%s", strings.Join(pkgs, "\n"), strings.Join(wantPkgs, "\n"))
	}
	if strings.Join(rels, "\n") != strings.Join(wantRels, "\n") {
		t.Errorf("relationships:\n%s\nwant\n%s", strings.Join(rels, "\n"), strings.Join(wantRels, "\n"))
	}
	if doc.DocumentNamespace != "https://spdx.org/spdxdocs/nixpush/hello/sha256-"+m.Encoded() || doc.CreationInfo.Created != "1970-01-01T00:00:01Z" {
		t.Errorf("namespace %s, created %s", doc.DocumentNamespace, doc.CreationInfo.Created)
	}
	const golden = "sha256:30cb1a5057ebd917335bc37bb4bd948d0dbdf551a55ed1b263eab46f7b967788"
	if got := digest.FromBytes(b); got != golden {
		t.Errorf("SBOM digest %s, golden %s: the format changed; if on purpose, update the golden digest\n%s", got, golden, b)
	}
}

func TestSPDXErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(img *description.Image)
		m      digest.Digest
		want   string
	}{
		{"two NAR hashes", func(img *description.Image) {
			img.Layers[0].Paths = append(img.Layers[0].Paths, layers.Path{Path: pathA, NarHash: hashB})
		}, digest.FromString("m"), "layers[0].paths[4].narHash: " + pathA + " has NAR hash"},
		{"not a store path", func(img *description.Image) {
			img.Layers[0].Paths[0].Path = pathA + "/bin"
		}, digest.FromString("m"), "layers[0].paths[0].path:"},
		{"no manifest digest", func(*description.Image) {}, "", "manifest digest:"},
		{"sha512 manifest", func(*description.Image) {}, digest.SHA512.FromString("m"), "not sha256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, refs := fixture(t)
			c.change(img)
			_, err := sbom.SPDX(sbom.Input{Image: img, Manifest: c.m, References: refs})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
