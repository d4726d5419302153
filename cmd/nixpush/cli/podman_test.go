package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// TestRunExampleWithPodman builds nix/examples' layered image with Nix,
// pushes it with nixpush, and runs it with podman. Podman is optional: if
// it cannot run containers on this machine, the test says why and skips.
func TestRunExampleWithPodman(t *testing.T) {
	nixBuild := testenv.Tool(t, "nix-build")
	podman := testenv.Tool(t, "podman")
	busybox := testenv.Tool(t, "busybox")
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)

	// The example takes directories holding bin/nixpush and bin/busybox.
	dirs := map[string]string{"nixpush": bin, "busybox": busybox}
	args := []string{"--no-out-link", examplesDir(t), "-A", "layered"}
	for name, prog := range dirs {
		d := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(filepath.Join(d, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(prog)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "bin", name), b, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--arg", name, d)
	}
	cmd := exec.Command(nixBuild, args...)
	if os.Getenv("NIX_CONFIG") == "" {
		cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =")
	}
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("nix-build %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	desc := strings.TrimSpace(string(out))

	image := reg.Host + "/layered:v1"
	r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+image)
	if r.err != nil {
		t.Fatalf("copy: %v\n%s", r.err, r.stderr)
	}

	tmp := t.TempDir()
	conf := filepath.Join(tmp, "containers.conf")
	storage := filepath.Join(tmp, "storage.conf")
	writeFile(t, conf, `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`)
	writeFile(t, storage, fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(tmp, "graph"), filepath.Join(tmp, "run")))
	pod := exec.Command(podman, "run", "--rm", "--tls-verify=false", image)
	pod.Env = append(os.Environ(), "CONTAINERS_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage, "HOME="+tmp)
	got, err := pod.CombinedOutput()
	if err != nil {
		if cannotRun.Match(got) {
			t.Skipf("podman cannot run containers on this machine: %v\n%s", err, got)
		}
		t.Fatalf("podman run %s: %v\n%s", image, err, got)
	}
	if !strings.Contains(string(got), "hello from nixpush") {
		t.Errorf("podman run %s printed %q, want the example's greeting", image, got)
	}
}

// cannotRun matches podman failures that come from the machine (no user
// namespaces, cgroups or runtime), not from the image.
var cannotRun = regexp.MustCompile(`(?i)newuidmap|user namespace|cgroup|OCI runtime|runc|operation not permitted|mount .*permission denied`)

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func examplesDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../../../nix/examples")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
