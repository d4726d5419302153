package nix_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
)

// TestPlan builds a release plan of the two example images with nix-build,
// checks it, and pushes it with nixpush push --plan.
func TestPlan(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t)
	minimal, layered := e.example(t, "minimal"), e.example(t, "layered")
	out, err := e.expr(t, `np.plan {
  images = { minimal = ex.minimal; layered = ex.layered; };
  registry = [ "`+reg.Host+`/team" "`+reg.Host+`/mirror" ];
  tags = name: image: [ "rel-1" image.imageTag ];
  extraDestinations = name: image: if name == "layered" then [ "docker://`+reg.Host+`/layered:extra" ] else [ ];
}`, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := registry.ParsePlan(b)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, b)
	}
	minTag := filepath.Base(minimal)[:32] // an untagged image's tag is its hash part
	want := []registry.Image{
		{Source: layered, Destinations: []string{
			"docker://" + reg.Host + "/team/layered:rel-1", "docker://" + reg.Host + "/team/layered:v1",
			"docker://" + reg.Host + "/mirror/layered:rel-1", "docker://" + reg.Host + "/mirror/layered:v1",
			"docker://" + reg.Host + "/layered:extra",
		}},
		{Source: minimal, Destinations: []string{
			"docker://" + reg.Host + "/team/minimal:rel-1", "docker://" + reg.Host + "/team/minimal:" + minTag,
			"docker://" + reg.Host + "/mirror/minimal:rel-1", "docker://" + reg.Host + "/mirror/minimal:" + minTag,
		}},
	}
	if !reflect.DeepEqual(plan.Images, want) {
		t.Errorf("plan:\n%s\nwant %+v", b, want)
	}
	// The plan keeps the images alive.
	refs, err := testenv.Nix(t, "nix-store", "-q", "--references", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{minimal, layered} {
		if !strings.Contains(refs, img) {
			t.Errorf("plan does not refer to %s; references:\n%s", img, refs)
		}
	}

	bin := filepath.Join(e.nixpush, "bin", "nixpush")
	cmd := exec.Command(bin, "push", "--dest-tls-verify=false", "--plan", out)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nixpush push --plan: %v\n%s", err, stderr.String())
	}
	ref, err := transport.NewReference(layered)
	if err != nil {
		t.Fatal(err)
	}
	built, err := transport.Build(ref.Image())
	if err != nil {
		t.Fatal(err)
	}
	if line := built.ManifestDigest.String() + " " + reg.Host + "/layered:extra"; !strings.Contains(stdout.String(), line) {
		t.Errorf("stdout lacks %q:\n%s", line, stdout.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n != 9 {
		t.Errorf("%d tags pushed, want 9:\n%s", n, stdout.String())
	}
	t.Logf("stderr:\n%s", stderr.String())

	t.Run("bad input", func(t *testing.T) {
		for _, body := range []string{
			`np.plan { images = { }; registry = "r.example"; }`,
			`np.plan { images = { x = ex.rootfs; }; registry = "r.example"; }`,
		} {
			if _, err := e.expr(t, body, ""); err == nil {
				t.Errorf("%s: built", body)
			}
		}
	})
}
