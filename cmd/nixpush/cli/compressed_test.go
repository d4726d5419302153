package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// runnable describes an image podman can run, every layer compressed as
// c says: busybox in one layer, in the other a script run by busybox that
// prints greeting, with a small root file system (/etc/passwd, /tmp).
func runnable(t *testing.T, name, greeting string, c *layers.Compression) (string, *description.Image) {
	t.Helper()
	bb, err := os.ReadFile(filepath.Join(testenv.BusyboxDir(t), "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	busybox := transporttest.AddStorePath(t, "busybox", map[string]transporttest.File{
		"bin/busybox": {Data: string(bb), Exec: true},
	})
	hello := transporttest.AddStorePath(t, name, map[string]transporttest.File{
		"bin/hello": {Data: "#!" + busybox.Path + "/bin/busybox sh\necho " + greeting + "\n", Exec: true},
	})
	root := transporttest.AddStorePath(t, "rootfs", map[string]transporttest.File{
		"etc/passwd": {Data: "root:x:0:0:root:/root:/bin/sh\n"},
		"tmp":        {Dir: true},
		"bin/sh":     {Link: busybox.Path + "/bin/busybox"},
	})
	root.Rewrite = "/"
	img := transporttest.Describe(t, name, ocispec.ImageConfig{
		Entrypoint: []string{hello.Path + "/bin/hello"},
		Env:        []string{"PATH=/bin"},
	}, []transporttest.Layer{
		{Paths: []layers.Path{busybox}, Compression: c},
		{Paths: []layers.Path{hello, root}, Perms: []layers.Perm{{Path: root.Path, Regex: "/tmp", Mode: "1777"}}, Compression: c},
	})
	return transporttest.Write(t, img), img
}

// TestCompressedWithPodman pushes a zstd image and a gzip image with
// nixpush copy, and podman pulls and runs each: it prints the image's
// greeting, and its layers are the described tars (podman's diff IDs). A
// re-push from an empty HOME writes no blob. The zstd image also goes
// straight into podman's store (containers-storage:) and runs from there.
func TestCompressedWithPodman(t *testing.T) {
	podman := testenv.Tool(t, "podman")
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	for _, c := range []*layers.Compression{transporttest.Zstd, transporttest.Gzip} {
		t.Run(c.Algorithm, func(t *testing.T) {
			greeting := "hello from a " + c.Algorithm + " image"
			desc, img := runnable(t, "hello-"+c.Algorithm, greeting, c)
			image := reg.Host + "/hello-" + c.Algorithm + ":v1"
			r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image)
			if r.err != nil {
				t.Fatalf("copy: %v\n%s", r.err, r.stderr)
			}
			env := testenv.PodmanEnv(t)
			runPodman(t, podman, env, "", "pull", "--tls-verify=false", image)
			runPodman(t, podman, env, greeting, "run", "--rm", image)
			checkPodmanLayers(t, podman, env, image, img)

			mark := reg.Mark()
			if r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image); r.err != nil {
				t.Fatalf("re-push: %v\n%s", r.err, r.stderr)
			}
			for _, q := range reg.Requests(mark) {
				if q.IsBlobWrite() || q.IsManifestWrite() {
					t.Errorf("re-push from an empty HOME wrote: %s", q)
				}
			}

			if c.Algorithm == layers.Zstd {
				local := "localhost/hello-zstd:v1"
				env := testenv.PodmanEnv(t)
				if r := run(t, bin, env, "copy", "-q", "nix:"+desc, "containers-storage:"+local); r.err != nil {
					t.Fatalf("copy to containers-storage: %v\n%s", r.err, r.stderr)
				}
				checkPodmanLayers(t, podman, env, local, img)
				runPodman(t, podman, env, greeting, "run", "--rm", local)
			}
		})
	}
}

// runPodman runs podman with args and checks that it prints want.
func runPodman(t *testing.T, podman string, env []string, want string, args ...string) {
	t.Helper()
	cmd := exec.Command(podman, args...)
	cmd.Env = append(os.Environ(), env...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, got)
	}
	if !strings.Contains(string(got), want) {
		t.Errorf("podman %s printed %q, want %q", strings.Join(args, " "), got, want)
	}
}

// checkPodmanLayers checks that podman's copy of image has the described
// layers: its diff IDs, computed by podman as it decompressed them, are
// the description's.
func checkPodmanLayers(t *testing.T, podman string, env []string, image string, img *description.Image) {
	t.Helper()
	cmd := exec.Command(podman, "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", image)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect %s: %v\n%s", image, err, out)
	}
	var want []string
	for _, l := range img.Layers {
		want = append(want, string(l.DiffID))
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("podman's %s has layers %v, want the diff IDs %v", image, got, want)
	}
}

// TestPushPlanCompressed pushes, from one plan, the uncompressed fixture
// and a zstd image of the same store path to one repository: the two
// share no layer (the compressed one has its own digest) but share their
// config (its diff IDs are the tars'), each manifest is the described one,
// and a re-run uploads nothing.
func TestPushPlanCompressed(t *testing.T) {
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	desc1, built1 := fixture(t)
	plain, err := description.ReadFile(desc1)
	if err != nil {
		t.Fatal(err)
	}
	img2 := transporttest.Describe(t, "cli-zstd", plain.Config, []transporttest.Layer{
		{Paths: plain.Layers[0].Paths, Compression: &layers.Compression{Algorithm: layers.Zstd, Level: 19}},
	})
	built2, err := transport.Build(img2)
	if err != nil {
		t.Fatal(err)
	}
	if img2.Layers[0].DiffID != plain.Layers[0].Digest || img2.Layers[0].Digest == plain.Layers[0].Digest || img2.Layers[0].Size >= plain.Layers[0].Size {
		t.Fatalf("zstd layer %+v of the uncompressed %+v: want the same tar, a smaller blob", img2.Layers[0], plain.Layers[0])
	}
	if built2.ConfigDigest != built1.ConfigDigest || built2.ManifestDigest == built1.ManifestDigest {
		t.Fatalf("configs %s and %s, manifests %s and %s: want one config, two manifests",
			built1.ConfigDigest, built2.ConfigDigest, built1.ManifestDigest, built2.ManifestDigest)
	}
	desc2 := transporttest.Write(t, img2)
	plan, _ := json.Marshal(registry.Plan{Images: []registry.Image{
		{Source: desc1, Destinations: []string{"docker://" + reg.Host + "/cli/app:plain"}},
		{Source: desc2, Destinations: []string{"docker://" + reg.Host + "/cli/app:zstd"}},
	}})
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	writeFile(t, planFile, string(plan))

	for i, want := range []int{3, 0} { // two layers and the config, then nothing
		reportFile := filepath.Join(dir, fmt.Sprintf("report%d.json", i))
		mark := reg.Mark()
		r := run(t, bin, nil, "push", "--dest-tls-verify=false", "--plan", planFile, "--report", reportFile)
		if r.err != nil {
			t.Fatalf("push %d: %v\n%s", i, r.err, r.stderr)
		}
		wantOut := fmt.Sprintf("%s %s/cli/app:plain\n%s %s/cli/app:zstd", built1.ManifestDigest, reg.Host, built2.ManifestDigest, reg.Host)
		if got := strings.TrimSpace(r.stdout); got != wantOut {
			t.Errorf("push %d: stdout\n%s\nwant\n%s", i, got, wantOut)
		}
		var rep registry.Report
		b, err := os.ReadFile(reportFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		uploads := 0
		for _, q := range reg.Requests(mark) {
			if q.IsBlobWrite() && strings.Contains(q.Path, "digest=") {
				uploads++
			}
		}
		if rep.Totals.Uploaded.Blobs != want || uploads != want || rep.Totals.Failed != 0 {
			t.Errorf("push %d: %d blobs uploaded (report: %+v), want %d", i, uploads, rep.Totals, want)
		}
	}
	for tag, built := range map[string]*transport.Built{"plain": built1, "zstd": built2} {
		raw := testenv.Skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/cli/app:"+tag)
		if string(raw) != string(built.Manifest) {
			t.Errorf("%s: manifest in the registry:\n%s\nwant\n%s", tag, raw, built.Manifest)
		}
	}
}

// TestVerifyCompressed: verify re-streams a compressed layer (tar and
// compression) and compares the blob's digest; a store path that is not
// the one built is named.
func TestVerifyCompressed(t *testing.T) {
	built := transporttest.AddStorePath(t, "verify-built", map[string]transporttest.File{"share/data": {Data: strings.Repeat("built\n", 1000)}})
	other := transporttest.AddStorePath(t, "verify-other", map[string]transporttest.File{"share/data": {Data: strings.Repeat("other\n", 1000)}})
	for _, c := range []*layers.Compression{transporttest.Zstd, transporttest.Gzip} {
		t.Run(c.Algorithm, func(t *testing.T) {
			img := transporttest.Describe(t, "verify", ocispec.ImageConfig{}, []transporttest.Layer{
				{Paths: []layers.Path{built}, Compression: c},
			})
			desc := transporttest.Write(t, img)
			out, err := runCLI(t, "verify", "nix:"+desc)
			if err != nil || !strings.Contains(out, "layer 0 "+string(img.Layers[0].Digest)+" ok") {
				t.Fatalf("verify of a fresh description: %v\n%s", err, out)
			}

			// The same description, naming another store path under the
			// built one's NAR hash: as if the path had changed since.
			b, err := os.ReadFile(desc)
			if err != nil {
				t.Fatal(err)
			}
			changed := filepath.Join(t.TempDir(), "changed.json")
			writeFile(t, changed, strings.ReplaceAll(string(b), built.Path, other.Path))
			out, err = runCLI(t, "verify", changed)
			if err == nil {
				t.Fatalf("verify accepted a store path that is not the one built:\n%s", out)
			}
			for _, want := range []string{"layers[0] (" + string(img.Layers[0].Digest) + ") does not match its description", other.Path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q: %v", want, err)
				}
			}
		})
	}
}

// TestInspectCompressed: inspect shows each layer's compression and the
// diff ID of its tar, in text and in JSON.
func TestInspectCompressed(t *testing.T) {
	p := transporttest.AddStorePath(t, "inspect-fixture", map[string]transporttest.File{"share/data": {Data: strings.Repeat("inspect\n", 1000)}})
	img := transporttest.Describe(t, "inspect", ocispec.ImageConfig{}, []transporttest.Layer{
		{Paths: []layers.Path{p}},
		{Paths: []layers.Path{p}, Compression: &layers.Compression{Algorithm: layers.Zstd, Level: 19}},
		{Paths: []layers.Path{p}, Compression: transporttest.Gzip},
	})
	desc := transporttest.Write(t, img)
	out, err := runCLI(t, "inspect", "--json", "nix:"+desc)
	if err != nil {
		t.Fatal(err)
	}
	var info transport.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	for i, l := range info.Layers {
		want := img.Layers[i]
		if l.DiffID != want.DiffID || l.MediaType != want.MediaType || (l.Compression == nil) != (want.Compression == nil) ||
			(l.Compression != nil && *l.Compression != *want.Compression) {
			t.Errorf("inspect --json layer %d: %+v, want %+v", i, l, want)
		}
	}
	out, err = runCLI(t, "inspect", "nix:"+desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Layers:           3 (",
		"; 2 compressed)",
		fmt.Sprintf("%s  %d bytes  zstd level 19\n       tar %s\n", img.Layers[1].Digest, img.Layers[1].Size, img.Layers[1].DiffID),
		fmt.Sprintf("%s  %d bytes  gzip level %d\n       tar %s\n", img.Layers[2].Digest, img.Layers[2].Size, layers.DefaultGzipLevel, img.Layers[2].DiffID),
		fmt.Sprintf("%s  %d bytes\n       %s\n", img.Layers[0].Digest, img.Layers[0].Size, p.Path),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}
