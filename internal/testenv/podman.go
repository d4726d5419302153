package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// PodmanEnv is the environment of a podman that runs containers on this
// machine (runc, cgroupfs, no journald), with its own empty store (vfs),
// HOME, and temporary directory and locks (shared with no other podman).
// The directory has a short name: conmon's sockets live below it, and a
// Unix socket's path has at most 107 bytes. Below a subtest's t.TempDir(),
// conmon dies without recording the container's exit, and podman waits 20
// seconds before giving up on it.
func PodmanEnv(t testing.TB) []string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "pod")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	conf := filepath.Join(tmp, "containers.conf")
	storage := filepath.Join(tmp, "storage.conf")
	files := map[string]string{
		conf: fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = %q
lock_type = "file"
`, filepath.Join(tmp, "libpod")),
		storage: fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(tmp, "graph"), filepath.Join(tmp, "run")),
	}
	for name, data := range files {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"CONTAINERS_CONF=" + conf, "CONTAINERS_STORAGE_CONF=" + storage, "HOME=" + tmp}
}

// cannotRun matches podman failures that come from the machine (no user
// namespaces, cgroups or runtime) rather than from the image.
var cannotRun = regexp.MustCompile(`(?i)newuidmap|user namespace|cgroup|OCI runtime|runc|operation not permitted|mount .*permission denied`)

// PodmanRun runs podman run with args in env (PodmanEnv's) and returns
// its output. A failure fails the test; one that looks like the machine's
// (cannotRun) skips it instead, unless RequireToolsEnv is 1: an image
// that cannot start can print the same words ("OCI runtime …").
func PodmanRun(t testing.TB, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Tool(t, "podman"), append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if cannotRun.Match(out) && os.Getenv(RequireToolsEnv) != "1" {
			t.Skipf("podman cannot run containers on this machine: %v\n%s", err, out)
		}
		t.Fatalf("podman run %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
