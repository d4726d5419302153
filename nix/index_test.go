package nix_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// TestBuildIndex builds nix/examples' index: an index description
// (version 3) of its amd64 and arm64 images, whose digests are the ones
// their descriptions build to, whose store references are exactly the two
// image descriptions, and which nix-build --check rebuilds bit for bit.
// The images carry their annotations (version 3); an image without any
// has none in its description (nor in its manifest).
func TestBuildIndex(t *testing.T) {
	e := setup(t)
	out := e.example(t, "index")
	idx, err := description.ReadIndexFile(out)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := idx.ReadImages()
	if err != nil {
		t.Fatal(err)
	}
	if idx.Version != 3 || idx.Name != "multiarch" || idx.Tag != "v1" || len(imgs) != 2 ||
		idx.Annotations[ocispec.AnnotationRevision] == "" || idx.Digest == "" {
		t.Fatalf("index %+v", idx)
	}
	enc, err := idx.Encode()
	if err != nil || enc.Digest != idx.Digest {
		t.Fatalf("the index encodes to %s (%v), its description says %s", enc.Digest, err, idx.Digest)
	}
	var want []string
	for i, img := range imgs {
		want = append(want, idx.Manifests[i].Image)
		if img.Version != 3 || img.Annotations[ocispec.AnnotationSource] == "" || img.Annotations[ocispec.AnnotationVersion] != "1.0" {
			t.Errorf("manifests[%d]: version %d, annotations %v", i, img.Version, img.Annotations)
		}
		check(t, idx.Manifests[i].Image, true)
	}
	refs, err := testenv.Nix(t, "nix-store", "-q", "--references", out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(refs)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s refers to %v, want its image descriptions %v", out, got, want)
	}
	args := append([]string{"--check", filepath.Join(e.repo, "nix", "examples"), "-A", "index"}, e.args()...)
	if _, err := testenv.NixBuild(t, args...); err != nil {
		t.Errorf("nix-build --check of the index: %v", err)
	}
	if img := readImage(t, e.example(t, "layered")); img.Annotations != nil {
		t.Errorf("the layered example (no annotations) has annotations %v", img.Annotations)
	}
}

// TestBuildIndexErrors: two images of one platform fail the build naming
// both; an image that is an index, or an empty list, is refused.
func TestBuildIndexErrors(t *testing.T) {
	e := setup(t)
	for _, c := range []struct{ name, body, want string }{
		{"same platform twice", `np.buildIndex { name = "twice"; images = [ ex.minimal ex.layered ]; }`,
			"is also the platform of manifests[0]"},
		{"an index in an index", `np.buildIndex { name = "nested"; images = [ ex.index ]; }`,
			"is an index, not an image"},
		{"no images", `np.buildIndex { name = "none"; images = [ ]; }`,
			"images must be a non-empty list"},
		{"annotation not a string", `np.buildImage { name = "x"; annotations.n = 1; }`,
			"annotations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.expr(t, c.body, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing %q", err, c.want)
			}
			if c.name == "same platform twice" {
				minimal, layered := e.example(t, "minimal"), e.example(t, "layered")
				for _, p := range []string{minimal, layered} {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("error does not name %s: %v", p, err)
					}
				}
			}
		})
	}
}

// TestIndexCopyToRegistry: an index carries the apps of an image; its
// copyToRegistry pushes the index (to a registry with TLS and basic
// auth), and the tag serves the index digest the description records.
func TestIndexCopyToRegistry(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth("user", appSecret))
	repo := reg.Host + "/apps-index"
	body := fmt.Sprintf(`np.buildIndex { name = %q; tag = "v1"; images = [ ex.multiarchAmd64 ex.multiarchArm64 ]; }`, repo)
	desc, err := e.expr(t, body, "")
	if err != nil {
		t.Fatal(err)
	}
	drv, err := e.expr(t, body, "copyToRegistry.drv")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := description.ReadIndexFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runApp(t, filepath.Join(drv, "bin", "copy-to-registry"), nil, "--dest-creds", "user:"+appSecret, "--dest-cert-dir", reg.CertDir)
	if err != nil {
		t.Fatalf("copy-to-registry: %v\n%s%s", err, stdout, stderr)
	}
	noSecret(t, appSecret, stdout, stderr)
	if got := strings.TrimSpace(stdout); !strings.HasSuffix(got, idx.Digest.String()) {
		t.Errorf("the app printed %q, want the index digest %s", got, idx.Digest)
	}
	if got := inspectDigest(t, reg, repo+":v1"); got != idx.Digest.String() {
		t.Errorf("%s:v1 is %s, want the index %s", repo, got, idx.Digest)
	}
}
