package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// buildExample builds an attribute of nix/examples with the real
// nix-build.
func buildExample(t *testing.T, attr string) string {
	t.Helper()
	out, err := testenv.NixBuild(t, filepath.Join(testenv.RepoRoot(t), "nix", "examples"), "-A", attr,
		"--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// inspectIndex runs nixpush inspect --json on an index description.
func inspectIndex(t *testing.T, bin, desc string) transport.IndexInfo {
	t.Helper()
	r := run(t, bin, nil, "inspect", "--json", "nix:"+desc)
	if r.err != nil {
		t.Fatalf("inspect: %v\n%s", r.err, r.stderr)
	}
	var info transport.IndexInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
	}
	return info
}

// uploads counts the blob uploads among the requests since mark (the PUT
// that completes each).
func uploads(reg *testenv.Registry, mark int) int {
	n := 0
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() && q.Method == "PUT" && strings.Contains(q.Path, "digest=") {
			n++
		}
	}
	return n
}

// TestIndexEndToEnd builds nix/examples' index (an amd64 and an arm64
// image sharing every layer) with Nix, pushes it with nixpush copy to a
// real registry, and checks it with skopeo and podman: an OCI index of two
// manifests with their platforms and the index's annotations, under the
// digest nixpush inspect printed before the push; each manifest with its
// annotations; the arm64 image chosen by skopeo --override-arch and podman
// pull --arch; the amd64 one run by podman. Each unique blob is uploaded
// once, and a re-push from an empty HOME writes nothing.
func TestIndexEndToEnd(t *testing.T) {
	testenv.RequireNix(t)
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	desc := buildExample(t, "index")
	info := inspectIndex(t, bin, desc)
	if len(info.Manifests) != 2 || info.Manifests[0].Platform != "linux/amd64" || info.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("inspect: platforms %+v, want linux/amd64 and linux/arm64", info.Manifests)
	}
	amd64, arm64 := info.Manifests[0].ManifestDigest, info.Manifests[1].ManifestDigest
	if a := info.Manifests[1].Annotations; a[ocispec.AnnotationCreated] != "1970-01-01T00:00:01Z" || a[ocispec.AnnotationVersion] != "1.0" {
		t.Errorf("inspect: arm64 manifest annotations %v", a)
	}

	image := reg.Host + "/multiarch:v1"
	mark := reg.Mark()
	r := run(t, bin, nil, "copy", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image)
	if r.err != nil {
		t.Fatalf("copy: %v\n%s", r.err, r.stderr)
	}
	if got := lastLine(r.stdout); got != info.IndexDigest.String() {
		t.Errorf("copy printed %s, inspect said the index is %s", got, info.IndexDigest)
	}
	for _, want := range []string{"linux/amd64: " + amd64.String(), "linux/arm64: " + arm64.String()} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stderr)
		}
	}
	// Two layers shared by both images, and two configs (one per
	// architecture); each image's SBOM and the empty config of their
	// artifact manifests: seven blobs, each uploaded once.
	if n := uploads(reg, mark); n != 7 {
		t.Errorf("%d blobs uploaded, want 7 (each unique blob once)", n)
	}

	raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+image)
	if d := digest.FromBytes(raw); d != info.IndexDigest {
		t.Errorf("the registry's index is %s, nixpush inspect said %s before the push", d, info.IndexDigest)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 2 {
		t.Fatalf("skopeo inspect --raw: not an OCI index of two manifests:\n%s", raw)
	}
	for i, want := range []struct {
		arch string
		d    digest.Digest
	}{{"amd64", amd64}, {"arm64", arm64}} {
		m := idx.Manifests[i]
		if m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != want.arch || m.Digest != want.d || m.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("manifests[%d]: %+v, want linux/%s %s", i, m, want.arch, want.d)
		}
	}
	if idx.Annotations[ocispec.AnnotationSource] != "https://github.com/nixpush/nixpush" || idx.Annotations[ocispec.AnnotationRevision] == "" {
		t.Errorf("index annotations %v, want source and revision", idx.Annotations)
	}
	for _, d := range []digest.Digest{amd64, arm64} {
		raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/multiarch@"+d.String())
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.Annotations[ocispec.AnnotationSource] == "" || m.Annotations[ocispec.AnnotationVersion] != "1.0" ||
			m.Annotations[ocispec.AnnotationCreated] != "1970-01-01T00:00:01Z" {
			t.Errorf("manifest %s annotations %v, want source, version and created (the image's)", d, m.Annotations)
		}
	}
	var chosen struct{ Architecture, Os string }
	if err := json.Unmarshal(testenv.Skopeo(t, "inspect", "--tls-verify=false", "--override-arch", "arm64", "docker://"+image), &chosen); err != nil {
		t.Fatal(err)
	}
	if chosen.Architecture != "arm64" || chosen.Os != "linux" {
		t.Errorf("skopeo inspect --override-arch arm64: %+v, want linux/arm64", chosen)
	}

	mark = reg.Mark()
	if r := run(t, bin, nil, "copy", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image); r.err != nil {
		t.Fatalf("re-push: %v\n%s", r.err, r.stderr)
	}
	for _, q := range reg.Requests(mark) {
		if q.Method != "GET" && q.Method != "HEAD" {
			t.Errorf("re-push from an empty HOME wrote: %s", q)
		}
		if strings.Contains(q.Path, "/blobs/") {
			t.Errorf("re-push asked for a blob: %s", q)
		}
	}

	// One platform's image alone, by the same engine.
	single := reg.Host + "/multiarch-arm64:v1"
	r = run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "--multi-arch", "system", "--override-arch", "arm64", "nix:"+desc, "docker://"+single)
	if r.err != nil {
		t.Fatalf("copy --multi-arch system --override-arch arm64: %v\n%s", r.err, r.stderr)
	}
	if got, raw := lastLine(r.stdout), testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+single); got != arm64.String() || digest.FromBytes(raw) != arm64 {
		t.Errorf("copy --multi-arch system --override-arch arm64 printed %s, the registry has %s; want the arm64 manifest %s", got, digest.FromBytes(raw), arm64)
	}

	podman := testenv.Tool(t, "podman")
	env := testenv.PodmanEnv(t)
	runPodman(t, podman, env, "", "pull", "--tls-verify=false", "--arch", "arm64", image)
	runPodman(t, podman, env, "arm64", "image", "inspect", "--format", "{{.Architecture}}", image)
	// The image podman holds is the arm64 one: its ID is that image's
	// config digest.
	runPodman(t, podman, env, info.Manifests[1].ConfigDigest.Encoded(), "image", "inspect", "--format", "{{.Id}}", image)
	env = testenv.PodmanEnv(t)
	runPodman(t, podman, env, "hello from nixpush", "run", "--rm", "--tls-verify=false", image)
	runPodman(t, podman, env, "amd64", "image", "inspect", "--format", "{{.Architecture}}", image)
}

// TestIndexCopyMultiArch copies the example index to oci: layouts with
// skopeo's selections: the whole index by default and with --all, the
// arm64 image alone with --multi-arch system --override-arch arm64, the
// index alone with --multi-arch index-only; skopeo reads each back.
func TestIndexCopyMultiArch(t *testing.T) {
	testenv.RequireNix(t)
	bin := buildNixpush(t)
	desc := buildExample(t, "index")
	info := inspectIndex(t, bin, desc)
	arm64 := info.Manifests[1].ManifestDigest
	for _, c := range []struct {
		name  string
		flags []string
		top   digest.Digest // what the tag names
		blobs int           // blobs in the layout
	}{
		{"default", nil, info.IndexDigest, 7}, // index, 2 manifests, 2 configs, 2 layers
		{"all", []string{"--all"}, info.IndexDigest, 7},
		{"system arm64", []string{"--multi-arch", "system", "--override-arch", "arm64"}, arm64, 4},
		{"index-only", []string{"--multi-arch", "index-only"}, info.IndexDigest, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "oci")
			args := append(append([]string{"copy", "-q"}, c.flags...), "nix:"+desc, "oci:"+dir+":v1")
			if r := run(t, bin, nil, args...); r.err != nil {
				t.Fatalf("copy: %v\n%s", r.err, r.stderr)
			}
			var top ocispec.Index
			b, err := os.ReadFile(filepath.Join(dir, "index.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &top); err != nil {
				t.Fatal(err)
			}
			if len(top.Manifests) != 1 || top.Manifests[0].Digest != c.top {
				t.Errorf("index.json %s, want v1 naming %s", b, c.top)
			}
			ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != c.blobs {
				t.Errorf("%d blobs in the layout, want %d", len(ents), c.blobs)
			}
			if c.blobs == 1 {
				return // only the index: no image to read back
			}
			var chosen struct{ Architecture string }
			if err := json.Unmarshal(testenv.Skopeo(t, "inspect", "--override-arch", "arm64", "oci:"+dir+":v1"), &chosen); err != nil {
				t.Fatal(err)
			}
			if chosen.Architecture != "arm64" {
				t.Errorf("skopeo inspect --override-arch arm64 oci:…: %s", chosen.Architecture)
			}
		})
	}
}

// TestPlanTwoIndexes pushes, from a plan nix/plan.nix writes, two indexes
// whose four images share their layers to two registries: each unique blob
// is uploaded once per registry (mounted into the other repository), the
// report names each index digest and each platform's manifest digest, and
// a re-run writes nothing.
func TestPlanTwoIndexes(t *testing.T) {
	testenv.RequireNix(t)
	reg1, reg2 := testenv.StartRegistry(t), testenv.StartRegistry(t)
	bin := buildNixpush(t)
	src := fmt.Sprintf(`{ nixpush, busybox }:
let
  np = import %q { inherit nixpush; };
  ex = import %q { inherit nixpush busybox; };
  # The example's images with another environment: other configs, the
  # same layers.
  other = arch: np.buildImage {
    name = "worker";
    inherit arch;
    layers = [ ex.base ];
    copyToRoot = [ ex.rootfs ];
    maxLayers = 2;
    perms = [{ path = ex.rootfs; regex = "/tmp"; mode = "1777"; }];
    config = { Entrypoint = [ "${ex.hello}/bin/hello" ]; Env = [ "PATH=/bin" "ROLE=worker" ]; };
  };
  worker = np.buildIndex { name = "worker"; images = [ (other "amd64") (other "arm64") ]; };
in
np.plan {
  images = { app = ex.index; inherit worker; };
  registry = [ %q %q ];
  tags = [ "v1" ];
}
`, filepath.Join(testenv.RepoRoot(t), "nix"), filepath.Join(testenv.RepoRoot(t), "nix", "examples"), reg1.Host, reg2.Host)
	file := filepath.Join(t.TempDir(), "plan.nix")
	writeFile(t, file, src)
	plan, err := testenv.NixBuild(t, file, "--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := registry.ReadPlan(plan)
	if err != nil {
		t.Fatal(err)
	}
	indexes := map[string]transport.IndexInfo{}
	for _, img := range p.Images {
		indexes[img.Source] = inspectIndex(t, bin, img.Source)
	}

	dir := t.TempDir()
	// Two shared layers and four configs (mounted between the two
	// repositories), the four images' SBOMs and the empty config their
	// artifact manifests share, once in each repository; then nothing.
	for i, want := range []int{12, 0} {
		reportFile := filepath.Join(dir, fmt.Sprintf("report%d.json", i))
		marks := []int{reg1.Mark(), reg2.Mark()}
		r := run(t, bin, nil, "push", "--dest-tls-verify=false", "--plan", plan, "--report", reportFile)
		if r.err != nil {
			t.Fatalf("push %d: %v\n%s", i, r.err, r.stderr)
		}
		for j, reg := range []*testenv.Registry{reg1, reg2} {
			if n := uploads(reg, marks[j]); n != want {
				t.Errorf("push %d: %d blobs uploaded to %s, want %d", i, n, reg.Host, want)
			}
			if i == 1 {
				for _, q := range reg.Requests(marks[j]) {
					if q.IsBlobWrite() || q.IsManifestWrite() {
						t.Errorf("re-run wrote: %s", q)
					}
				}
			}
		}
		var rep registry.Report
		b, err := os.ReadFile(reportFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Images) != 2 || rep.Totals.Failed != 0 {
			t.Fatalf("push %d: report %s", i, b)
		}
		if i == 0 && (rep.Totals.Mounted.Blobs != 4 || rep.Totals.Uploaded.Blobs != 12) {
			t.Errorf("push %d: totals %+v, want 12 uploads (6 per registry) and 4 mounts (the shared layers, per registry)", i, rep.Totals)
		}
		for _, ir := range rep.Images {
			info := indexes[ir.Source]
			if ir.Digest != info.IndexDigest || len(ir.Platforms) != 2 || len(ir.Destinations) != 2 {
				t.Errorf("push %d: report of %s: %+v, want index %s with two platforms and destinations", i, ir.Source, ir, info.IndexDigest)
				continue
			}
			for k, pl := range ir.Platforms {
				if pl.Digest != info.Manifests[k].ManifestDigest || pl.Platform != info.Manifests[k].Platform {
					t.Errorf("push %d: report platform %+v, want %s %s", i, pl, info.Manifests[k].Platform, info.Manifests[k].ManifestDigest)
				}
			}
			for _, d := range ir.Destinations {
				if !strings.Contains(r.stdout, ir.Digest.String()+" "+d.Reference) {
					t.Errorf("push %d: stdout lacks %s %s:\n%s", i, ir.Digest, d.Reference, r.stdout)
				}
				raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+d.Reference)
				if digest.FromBytes(raw) != ir.Digest {
					t.Errorf("%s serves %s, want the index %s", d.Reference, digest.FromBytes(raw), ir.Digest)
				}
			}
		}
	}
	// The layers really are shared: the two indexes' images name the same
	// layer digests.
	var layersOf [][]digest.Digest
	for _, info := range indexes {
		var ds []digest.Digest
		for _, l := range info.Manifests[0].Layers {
			ds = append(ds, l.Digest)
		}
		layersOf = append(layersOf, ds)
	}
	if len(layersOf) != 2 || !slices.Equal(layersOf[0], layersOf[1]) {
		t.Errorf("the indexes' images do not share their layers: %v", layersOf)
	}
}

// TestVerifyIndex: verify checks every image of the example index; an
// index whose arm64 image names a store path that is not the one built
// (under the built one's NAR hash, as if it had changed since) fails,
// naming manifests[1] and that store path.
func TestVerifyIndex(t *testing.T) {
	testenv.RequireNix(t)
	desc := buildExample(t, "index")
	out, err := runCLI(t, "verify", "nix:"+desc)
	if err != nil || !strings.Contains(out, "linux/arm64 ") || !strings.Contains(out, "all 2 images of "+desc+" match") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	idx, err := description.ReadIndexFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := idx.ReadImages()
	if err != nil {
		t.Fatal(err)
	}
	arm := imgs[1]
	// A store path of the last layer that the config does not name (the
	// root file system), so the manifest stays the one the index names.
	var built string
	for _, p := range arm.Layers[len(arm.Layers)-1].Paths {
		if !strings.Contains(strings.Join(arm.Config.Entrypoint, " "), p.Path) {
			built = p.Path
		}
	}
	other := transporttest.AddStorePath(t, "verify-index-other", map[string]transporttest.File{"bin/hello": {Data: "other\n", Exec: true}})
	b, err := description.Marshal(arm)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "image-changed.json")
	writeFile(t, file, strings.ReplaceAll(string(b), built, other.Path))
	changed, err := testenv.Nix(t, "nix-store", "--add", file)
	if err != nil {
		t.Fatal(err)
	}
	idx.Manifests[1].Image = changed
	idx.Digest = ""
	ib, err := description.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "index.json")
	writeFile(t, bad, string(ib))
	out, err = runCLI(t, "verify", bad)
	if err == nil {
		t.Fatalf("verify accepted an index whose image names another store path:\n%s", out)
	}
	for _, want := range []string{"manifests[1] (linux/arm64, " + changed + ")", "does not match its description", other.Path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if !strings.Contains(out, "linux/amd64 ") {
		t.Errorf("the amd64 image was not verified:\n%s", out)
	}
}
