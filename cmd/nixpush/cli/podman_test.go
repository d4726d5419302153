package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// TestRunExampleWithPodman builds nix/examples' layered image with Nix,
// uncompressed, zstd and gzip, pushes each with nixpush, and runs it with
// podman. Podman is optional: when it is not installed, or cannot run
// containers on this machine (unless NIXPUSH_REQUIRE_TOOLS=1), the test
// says why and skips (testenv.PodmanRun).
func TestRunExampleWithPodman(t *testing.T) {
	testenv.RequireNix(t)
	// Podman is optional even under NIXPUSH_REQUIRE_TOOLS: the image is
	// checked with skopeo and umoci elsewhere.
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("podman is optional and not installed: %v", err)
	}
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	for _, compression := range []string{"none", "zstd", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			desc, err := testenv.NixBuild(t, filepath.Join(testenv.RepoRoot(t), "nix", "examples"), "-A", "layered",
				"--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t), "--argstr", "compression", compression)
			if err != nil {
				t.Fatal(err)
			}
			img, err := description.ReadFile(desc)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range img.Layers {
				if (l.Compression == nil) != (compression == "none") || (l.Compression != nil && l.Compression.Algorithm != compression) {
					t.Fatalf("layers[%d]: compression %+v, want %s", i, l.Compression, compression)
				}
			}

			image := reg.Host + "/layered:" + compression
			r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image)
			if r.err != nil {
				t.Fatalf("copy: %v\n%s", r.err, r.stderr)
			}

			got := testenv.PodmanRun(t, testenv.PodmanEnv(t), "--rm", "--tls-verify=false", image)
			if !strings.Contains(got, "hello from nixpush") {
				t.Errorf("podman run %s printed %q, want the example's greeting", image, got)
			}
		})
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCopyToContainersStorage copies a Nix-built image straight into
// podman's local store (containers-storage:, which re-executes the nixpush
// binary) and checks with podman that the image is there under its name
// and with its layers' diff IDs.
func TestCopyToContainersStorage(t *testing.T) {
	testenv.RequireNix(t)
	podman := testenv.Tool(t, "podman")
	bin := buildNixpush(t)
	desc, err := testenv.NixBuild(t, filepath.Join(testenv.RepoRoot(t), "nix", "examples"), "-A", "layered",
		"--arg", "nixpush", testenv.NixpushDir(t), "--arg", "busybox", testenv.BusyboxDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	storage := filepath.Join(tmp, "storage.conf")
	writeFile(t, storage, fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(tmp, "graph"), filepath.Join(tmp, "run")))
	env := []string{"CONTAINERS_STORAGE_CONF=" + storage, "HOME=" + tmp}
	r := run(t, bin, env, "copy", "-q", "nix:"+desc, "containers-storage:localhost/layered:v1")
	if r.err != nil {
		t.Fatalf("copy to containers-storage: %v\n%s", r.err, r.stderr)
	}
	inspect := exec.Command(podman, "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", "localhost/layered:v1")
	inspect.Env = append(os.Environ(), env...)
	got, err := inspect.CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, got)
	}
	img, err := description.ReadFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range img.Layers {
		if !strings.Contains(string(got), string(l.Digest)) {
			t.Errorf("podman's image lacks layer %s: %s", l.Digest, got)
		}
	}
}
