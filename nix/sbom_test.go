package nix_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// TestSBOM builds the layered example (a buildLayer base, copyToRoot,
// config store paths) and checks its SBOM with tools nixpush did not
// write: spdx/tools-golang parses and validates it; it lists exactly the
// image's store paths, with the NAR hashes, references and
// builtins.parseDrvName splits Nix itself reports; its subject is the
// manifest digest; nix-build --check rebuilds it bit for bit. Then it is
// pushed, on docker-registry 2.8 and on distribution v3 (neither has the
// referrers API), and oras finds it as a referrer (TestSBOMPush).
func TestSBOM(t *testing.T) {
	e := setup(t)
	out := e.example(t, "layered")
	img, err := description.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if img.Version != 3 || img.SBOM == nil {
		t.Fatalf("version %d, sbom %+v: want a version-3 description with an SBOM", img.Version, img.SBOM)
	}
	b, err := os.ReadFile(img.SBOM.Path)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(b) != img.SBOM.Digest || int64(len(b)) != img.SBOM.Size || img.SBOM.MediaType != "application/spdx+json" {
		t.Errorf("sbom %+v, but the file is %s (%d bytes)", img.SBOM, digest.FromBytes(b), len(b))
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("tools-golang cannot read the SBOM: %v", err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("tools-golang: %v", err)
	}
	_, m, err := img.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created != "1970-01-01T00:00:01Z" ||
		!strings.HasSuffix(doc.DocumentNamespace, "/layered/sha256-"+m.Digest.Encoded()) {
		t.Errorf("document %s, %s, created %s, namespace %s", doc.SPDXVersion, doc.DataLicense, doc.CreationInfo.Created, doc.DocumentNamespace)
	}

	// The image's store paths, as its layers list them.
	var want []string
	for _, l := range img.Layers {
		for _, p := range l.Paths {
			want = append(want, p.Path)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) < 3 {
		t.Fatalf("the example has %d store paths; want busybox, hello and rootfs at least", len(want))
	}

	// Each package: the image, or a store path.
	byPath := map[string]*spdx.Package{}
	ids := map[string]string{} // SPDX id → store path
	var imagePkg *spdx.Package
	for _, p := range doc.Packages {
		var sp string
		for _, r := range p.PackageExternalReferences {
			if r.Category == "OTHER" && r.RefType == "nix-store-path" {
				sp = r.Locator
			}
		}
		if sp == "" {
			if imagePkg != nil {
				t.Errorf("two packages without a store path: %s, %s", imagePkg.PackageName, p.PackageName)
			}
			imagePkg = p
			continue
		}
		byPath[sp] = p
		ids[string(p.PackageSPDXIdentifier)] = sp
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for p := range byPath {
			if !yield(p) {
				return
			}
		}
	})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SBOM lists store paths\n  %v\nthe image holds\n  %v", got, want)
	}
	if imagePkg == nil || len(imagePkg.PackageChecksums) != 1 || imagePkg.PackageChecksums[0].Value != m.Digest.Encoded() ||
		imagePkg.PackageVersion != m.Digest.String() {
		t.Errorf("image package %+v: want the manifest digest %s", imagePkg, m.Digest)
	}

	// NAR hashes, references and names, as Nix reports them.
	hashes, err := testenv.Nix(t, "nix-store", append([]string{"-q", "--hash"}, want...)...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range want {
		names = append(names, fmt.Sprintf("%q", filepath.Base(p)[33:]))
	}
	parsed, err := testenv.Nix(t, "nix-instantiate", "--eval", "--json", "--strict", "-E", "map builtins.parseDrvName [ "+strings.Join(names, " ")+" ]")
	if err != nil {
		t.Fatal(err)
	}
	var drvNames []struct{ Name, Version string }
	if err := json.Unmarshal([]byte(parsed), &drvNames); err != nil {
		t.Fatal(err)
	}
	var wantDeps []string
	for i, p := range want {
		h, err := nixhash.ParseAny(strings.Fields(hashes)[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		pkg := byPath[p]
		if pkg == nil {
			continue
		}
		if len(pkg.PackageChecksums) != 1 || pkg.PackageChecksums[0].Algorithm != "SHA256" || pkg.PackageChecksums[0].Value != fmt.Sprintf("%x", h.Digest()) {
			t.Errorf("%s: checksums %+v, want SHA256 %x", p, pkg.PackageChecksums, h.Digest())
		}
		if pkg.PackageName != drvNames[i].Name || pkg.PackageVersion != drvNames[i].Version {
			t.Errorf("%s: name %q version %q, builtins.parseDrvName says %q %q", p, pkg.PackageName, pkg.PackageVersion, drvNames[i].Name, drvNames[i].Version)
		}
		refs, err := testenv.Nix(t, "nix-store", "-q", "--references", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range strings.Fields(refs) {
			if r != p && slices.Contains(want, r) {
				wantDeps = append(wantDeps, p+" -> "+r)
			}
		}
	}
	var gotDeps []string
	contains := 0
	for _, r := range doc.Relationships {
		switch r.Relationship {
		case "DEPENDS_ON":
			gotDeps = append(gotDeps, ids[string(r.RefA.ElementRefID)]+" -> "+ids[string(r.RefB.ElementRefID)])
		case "CONTAINS":
			contains++
		}
	}
	slices.Sort(gotDeps)
	slices.Sort(wantDeps)
	if !reflect.DeepEqual(gotDeps, wantDeps) || len(wantDeps) == 0 {
		t.Errorf("DEPENDS_ON\n  %v\nNix's references\n  %v", gotDeps, wantDeps)
	}
	if contains != len(want) {
		t.Errorf("%d CONTAINS relationships, want %d", contains, len(want))
	}

	// Bit for bit again.
	if _, err := e.exampleWith(t, "layered", `"none"`, true); err != nil {
		t.Errorf("nix-build --check: %v", err)
	}
	sbomOut, err := testenv.NixBuild(t, filepath.Join(e.repo, "nix", "examples"), "-A", "layered.sbom", "--arg", "nixpush", e.nixpush, "--arg", "busybox", e.busybox)
	if err != nil || sbomOut != img.SBOM.Path {
		t.Errorf("layered.sbom builds %s (%v), the description names %s", sbomOut, err, img.SBOM.Path)
	}

	// nixpush sbom prints it.
	printed, err := exec.Command(filepath.Join(e.nixpush, "bin", "nixpush"), "sbom", "nix:"+out).Output()
	if err != nil || !bytes.Equal(printed, b) {
		t.Errorf("nixpush sbom: %v; prints %d bytes, the file has %d", err, len(printed), len(b))
	}
}

// layersVersion is the description version img needs without its SBOM
// (version 3): what its layers alone need.
func layersVersion(img *description.Image) int {
	c := *img
	c.SBOM = nil
	return c.NeededVersion()
}

// TestSBOMOff: sbom = false builds the description as before SBOMs
// (version 1, no "sbom" output), with the same manifest digest as with
// one; a non-boolean fails at evaluation.
func TestSBOMOff(t *testing.T) {
	e := setup(t)
	build := func(sbomArg string) (*description.Image, error) {
		out, err := e.expr(t, `np.buildImage { name = "off"; config.Entrypoint = [ "${bb}/bin/busybox" ]; `+sbomArg+` }`, "")
		if err != nil {
			return nil, err
		}
		return description.ReadFile(out)
	}
	on, err := build("")
	if err != nil {
		t.Fatal(err)
	}
	off, err := build("sbom = false;")
	if err != nil {
		t.Fatal(err)
	}
	if on.SBOM == nil || on.Version != 3 || off.SBOM != nil || off.Version != 1 {
		t.Errorf("default: version %d, sbom %v; sbom = false: version %d, sbom %v", on.Version, on.SBOM, off.Version, off.SBOM)
	}
	_, mOn, err := on.Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, mOff, err := off.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if mOn.Digest != mOff.Digest {
		t.Errorf("manifest %s with the SBOM, %s without", mOn.Digest, mOff.Digest)
	}
	outputs, err := testenv.Nix(t, "nix-instantiate", "--eval", "--json", "--strict", "-E",
		fmt.Sprintf(`map (o: o.outputName) ((import %s { nixpush = %s; }).buildImage { name = "off"; sbom = false; }).all`, filepath.Join(e.repo, "nix"), e.nixpush))
	if err != nil || outputs != `["out"]` {
		t.Errorf("sbom = false: outputs %s (%v), want [\"out\"]", outputs, err)
	}
	if _, err := build(`sbom = "yes";`); err == nil || !strings.Contains(err.Error(), "sbom must be true or false") {
		t.Errorf(`sbom = "yes": %v`, err)
	}
}
