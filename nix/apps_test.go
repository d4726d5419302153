package nix_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// appImage is the image the app tests push: a shared busybox layer and a
// root file system, named after the registry it goes to.
func appImage(repo string) string {
	return fmt.Sprintf(`np.buildImage {
  name = %q;
  tag = "v1";
  layers = [ ex.base ];
  copyToRoot = [ ex.rootfs ];
  config.Entrypoint = [ "${bb}/bin/busybox" "sh" ];
}`, repo)
}

// buildApp builds the derivation of the app attr of appImage(repo) and
// returns the app's program, checking it is where the app says.
func (e env) buildApp(t *testing.T, repo, attr string) string {
	t.Helper()
	out, err := e.expr(t, appImage(repo), attr+".drv")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "app.nix")
	src := fmt.Sprintf(`{ nixpush, busybox }: let np = import %q { inherit nixpush; }; ex = import %q { inherit nixpush busybox; }; bb = ex.busybox; in (%s).%s`,
		filepath.Join(e.repo, "nix"), filepath.Join(e.repo, "nix", "examples"), appImage(repo), attr)
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	js, err := testenv.Nix(t, "nix-instantiate", append([]string{"--eval", "--strict", "--json", f}, e.args()...)...)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Type    string `json:"type"`
		Program string `json:"program"`
	}
	if err := json.Unmarshal([]byte(js), &app); err != nil {
		t.Fatalf("%s: %v\n%s", attr, err, js)
	}
	if app.Type != "app" || !strings.HasPrefix(app.Program, out+"/bin/") {
		t.Fatalf("%s = %s, want an app whose program is in %s/bin", attr, js, out)
	}
	return app.Program
}

// runApp runs an app's program with a private HOME and an empty
// containers blob-info cache; it returns stdout, stderr and the error.
func runApp(t *testing.T, program string, extraEnv []string, args ...string) (string, string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(program, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+home, "REGISTRY_AUTH_FILE="+filepath.Join(home, "none.json"))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// noSecret fails the test if secret appears in any of outs.
func noSecret(t *testing.T, secret string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, secret) {
			t.Fatalf("the password appears in the app's output:\n%s", o)
		}
	}
}

// inspectDigest returns the digest of ref as skopeo sees it, logging in
// with an auth file (never a password in argv).
func inspectDigest(t *testing.T, reg *testenv.Registry, ref string) string {
	t.Helper()
	skopeo := testenv.Tool(t, "skopeo")
	cmd := exec.Command(skopeo, "inspect", "--authfile", reg.AuthFile(t), "--cert-dir", reg.CertDir, "docker://"+ref)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	var info struct{ Digest string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.Digest
}

const appSecret = "s3cret-must-not-leak"

func TestCopyToRegistry(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth("user", appSecret))
	repo := reg.Host + "/apps"
	program := e.buildApp(t, repo, "copyToRegistry")

	t.Run("wrong password", func(t *testing.T) {
		wrong := "wrong-" + appSecret
		stdout, stderr, err := runApp(t, program, nil, "--dest-creds", "user:"+wrong, "--dest-cert-dir", reg.CertDir)
		if err == nil {
			t.Fatalf("pushed with a wrong password:\n%s%s", stdout, stderr)
		}
		noSecret(t, wrong, stdout, stderr)
	})

	stdout, stderr, err := runApp(t, program, nil, "--dest-creds", "user:"+appSecret, "--dest-cert-dir", reg.CertDir)
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", program, err, stdout, stderr)
	}
	noSecret(t, appSecret, stdout, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	pushed := lines[len(lines)-1]
	if got := inspectDigest(t, reg, repo+":v1"); got != pushed {
		t.Fatalf("registry has %s at %s:v1, the app printed %s", got, repo, pushed)
	}
}

func TestCopyTo(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth("user", appSecret))
	program := e.buildApp(t, reg.Host+"/apps", "copyTo")

	for _, args := range [][]string{nil, {"--dest-creds", "user:" + appSecret}} {
		stdout, stderr, err := runApp(t, program, nil, args...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr, "usage: copy-to DESTINATION") {
			t.Fatalf("without a destination (%d args): %v, want exit 2 and a usage line\n%s%s", len(args), err, stdout, stderr)
		}
		noSecret(t, appSecret, stdout, stderr)
	}

	ref := reg.Host + "/elsewhere:v2"
	stdout, stderr, err := runApp(t, program, nil, "docker://"+ref, "--dest-creds", "user:"+appSecret, "--dest-cert-dir", reg.CertDir, "-q")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	noSecret(t, appSecret, stdout, stderr)
	if got, want := inspectDigest(t, reg, ref), strings.TrimSpace(stdout); got != want {
		t.Fatalf("registry has %s at %s, the app printed %s", got, ref, want)
	}

	oci := filepath.Join(t.TempDir(), "layout")
	if stdout, stderr, err := runApp(t, program, nil, "oci:"+oci+":v1", "-q"); err != nil {
		t.Fatalf("to oci: %v\n%s%s", err, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(oci, "index.json")); err != nil {
		t.Fatalf("no OCI layout written: %v", err)
	}
}

func TestCopyToPodman(t *testing.T) {
	e := setup(t)
	podman := testenv.Tool(t, "podman")
	program := e.buildApp(t, "nixpush-test/apps", "copyToPodman")

	// podman with its own storage (vfs) and configuration, as
	// docs/notes describe for this kind of machine.
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage.conf")
	conf := filepath.Join(dir, "containers.conf")
	writeFile(t, storage, fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "graph"), filepath.Join(dir, "run")))
	writeFile(t, conf, "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n")
	env := []string{"CONTAINERS_STORAGE_CONF=" + storage, "CONTAINERS_CONF=" + conf, "TMPDIR=" + dir}

	stdout, stderr, err := runApp(t, program, env, "--dest-creds", "user:"+appSecret)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout, stderr)
	}
	noSecret(t, appSecret, stdout, stderr)
	if !strings.Contains(stdout, "nixpush-test/apps:v1") {
		t.Errorf("podman load did not name the image:\n%s", stdout)
	}
	cmd := exec.Command(podman, "image", "exists", "nixpush-test/apps:v1")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman image exists: %v\n%s", err, out)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "nixpush.*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestCopyToDockerDaemon(t *testing.T) {
	e := setup(t)
	program := e.buildApp(t, "nixpush-test/apps", "copyToDockerDaemon")
	stdout, stderr, err := runApp(t, program, []string{"DOCKER_HOST="}, "--dest-creds", "user:"+appSecret)
	noSecret(t, appSecret, stdout, stderr)

	// DOCKER_HOST is honoured, as Docker's own clients do.
	missing := filepath.Join(t.TempDir(), "docker.sock")
	_, stderr2, err2 := runApp(t, program, []string{"DOCKER_HOST=unix://" + missing})
	if err2 == nil || !strings.Contains(stderr2, missing) {
		t.Errorf("with DOCKER_HOST=unix://%s: %v, want an error naming that socket\n%s", missing, err2, stderr2)
	}
	if fi, statErr := os.Stat("/var/run/docker.sock"); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
		if err != nil {
			t.Fatalf("copy to the Docker daemon: %v\n%s%s", err, stdout, stderr)
		}
		return
	}
	// No daemon here: a clear error naming the socket, before any work.
	if err == nil || !strings.Contains(stderr, "no Docker daemon at unix:///var/run/docker.sock") {
		t.Fatalf("without a daemon: %v, want a clear error\n%s%s", err, stdout, stderr)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
