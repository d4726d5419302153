package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// buildNixpush returns the CLI, built once per test binary run.
func buildNixpush(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.NixpushDir(t), "bin", "nixpush")
}

type result struct {
	stdout, stderr string
	err            error
}

// run runs nixpush with a fresh HOME and no auth file in the environment.
func run(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func fixture(t *testing.T) (string, *transport.Built) {
	t.Helper()
	p := transporttest.AddStorePath(t, "cli-fixture", map[string]transporttest.File{
		"bin/hello": {Data: "#!/bin/sh\necho hello\n", Exec: true},
		"share/big": {Data: strings.Repeat("0123456789abcdef", 1<<14)},
	})
	img := transporttest.Describe(t, "cli", ocispec.ImageConfig{Cmd: []string{p.Path + "/bin/hello"}},
		[]transporttest.Layer{{Paths: []layers.Path{p}}})
	built, err := transport.Build(img)
	if err != nil {
		t.Fatal(err)
	}
	return transporttest.Write(t, img), built
}

// TestCopyTLSAuth pushes to a registry with TLS and htpasswd auth.
func TestCopyTLSAuth(t *testing.T) {
	const user, password = "nixpush", "s3cret-Pa55word"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc, built := fixture(t)
	dest := "docker://" + reg.Host + "/cli:v1"
	certs := "--dest-cert-dir=" + reg.CertDir

	checkNoSecret := func(t *testing.T, r result) {
		t.Helper()
		for _, s := range []string{r.stdout, r.stderr} {
			if strings.Contains(s, password) || strings.Contains(s, "wrong-"+password) {
				t.Errorf("the password appears in the output:\n%s", s)
			}
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		r := run(t, bin, nil, "copy", certs, "--dest-creds", user+":wrong-"+password, "nix:"+desc, dest)
		if r.err == nil {
			t.Fatalf("copy succeeded with a wrong password:\n%s", r.stderr)
		}
		if !strings.Contains(r.stderr, "401") || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
			t.Errorf("stderr does not say 401 Unauthorized:\n%s", r.stderr)
		}
		t.Logf("stderr:\n%s", r.stderr)
		checkNoSecret(t, r)
		for _, q := range reg.Requests(0) {
			if q.IsManifestWrite() || (q.IsBlobWrite() && q.Status < 300) {
				t.Errorf("request succeeded without credentials: %s", q)
			}
		}
	})

	t.Run("no certificate", func(t *testing.T) {
		r := run(t, bin, nil, "copy", "--dest-creds", user+":"+password, "nix:"+desc, dest)
		if r.err == nil || !strings.Contains(r.stderr, "certificate") {
			t.Errorf("copy without --dest-cert-dir: err %v, stderr:\n%s", r.err, r.stderr)
		}
		checkNoSecret(t, r)
	})

	var digest string
	t.Run("dest-creds", func(t *testing.T) {
		digestFile := filepath.Join(t.TempDir(), "digest")
		r := run(t, bin, nil, "copy", certs, "--dest-creds", user+":"+password, "--digestfile", digestFile,
			"--additional-tag", "latest", "nix:"+desc, dest)
		if r.err != nil {
			t.Fatalf("copy: %v\n%s", r.err, r.stderr)
		}
		checkNoSecret(t, r)
		digest = lastLine(r.stdout)
		if digest != built.ManifestDigest.String() {
			t.Errorf("last line of stdout %q, want %s", digest, built.ManifestDigest)
		}
		if b, err := os.ReadFile(digestFile); err != nil || string(b) != digest {
			t.Errorf("digest file: %q, %v", b, err)
		}
		if !strings.Contains(r.stderr, "layer 1/1") {
			t.Errorf("no progress on stderr:\n%s", r.stderr)
		}
	})

	t.Run("authfile and quiet", func(t *testing.T) {
		auth := reg.AuthFile(t)
		for _, args := range [][]string{
			{"copy", "-q", certs, "--authfile", auth, "nix:" + desc, dest},
			{"copy", "-q", certs, "nix:" + desc, dest}, // REGISTRY_AUTH_FILE
		} {
			mark := reg.Mark()
			r := run(t, bin, []string{"REGISTRY_AUTH_FILE=" + auth}, args...)
			if r.err != nil {
				t.Fatalf("%v: %v\n%s", args, r.err, r.stderr)
			}
			if r.stderr != "" {
				t.Errorf("-q printed on stderr:\n%s", r.stderr)
			}
			if strings.TrimSpace(r.stdout) != digest {
				t.Errorf("stdout %q, want just %s", r.stdout, digest)
			}
			for _, q := range reg.Requests(mark) {
				if q.IsBlobWrite() {
					t.Errorf("re-push wrote a blob: %s", q)
				}
			}
		}
	})

	t.Run("docker config.json and credential helper", func(t *testing.T) {
		// A credential helper is a program named docker-credential-NAME;
		// it gets the registry on stdin and answers with the secret on
		// stdout, so the secret is never in anyone's arguments.
		helpers := t.TempDir()
		helper := "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"" + user + "\",\"Secret\":\"" + password + "\"}' \"$server\"\n"
		if err := os.WriteFile(filepath.Join(helpers, "docker-credential-nixpushtest"), []byte(helper), 0o700); err != nil {
			t.Fatal(err)
		}
		auth, err := os.ReadFile(reg.AuthFile(t))
		if err != nil {
			t.Fatal(err)
		}
		for name, config := range map[string]string{
			"auths":       string(auth),
			"credHelpers": `{"credHelpers": {"` + reg.Host + `": "nixpushtest"}}`,
		} {
			home := t.TempDir()
			if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(home, ".docker", "config.json"), config)
			env := []string{"HOME=" + home, "PATH=" + helpers + ":" + os.Getenv("PATH")}
			r := run(t, bin, env, "copy", certs, "nix:"+desc, dest)
			if r.err != nil {
				t.Errorf("%s: %v\n%s", name, r.err, r.stderr)
			}
			checkNoSecret(t, r)
		}
	})

	t.Run("skopeo reads both tags", func(t *testing.T) {
		skopeo := testenv.Tool(t, "skopeo")
		for _, tag := range []string{"v1", "latest"} {
			cmd := exec.Command(skopeo, "inspect", "--authfile", reg.AuthFile(t), "--cert-dir", reg.CertDir, "docker://"+reg.Host+"/cli:"+tag)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect %s: %v\n%s", tag, err, out)
			}
			var si struct{ Digest string }
			if err := json.Unmarshal(out, &si); err != nil || si.Digest != digest {
				t.Errorf("tag %s: digest %q (%v), want %s", tag, si.Digest, err, digest)
			}
		}
	})
}

// TestInspect checks inspect's text and JSON against the manifest built
// by the transport.
func TestInspect(t *testing.T) {
	bin := buildNixpush(t)
	desc, built := fixture(t)
	r := run(t, bin, nil, "inspect", "--json", "nix:"+desc)
	if r.err != nil {
		t.Fatalf("inspect --json: %v\n%s", r.err, r.stderr)
	}
	var info transport.Info
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.ManifestDigest != built.ManifestDigest || len(info.Layers) != 1 || len(info.Layers[0].Paths) != 1 {
		t.Errorf("inspect --json: %s", r.stdout)
	}
	r = run(t, bin, nil, "inspect", desc)
	if r.err != nil {
		t.Fatalf("inspect: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{built.ManifestDigest.String(), info.Layers[0].Paths[0], "Cmd"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
}
