package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/registry"
)

// runStdin is run with stdin.
func runStdin(t *testing.T, bin, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{out.String(), errb.String(), err}
}

// authorized counts the requests reg accepted (any status but 401) since
// mark: with htpasswd auth, only requests that carried its credentials.
func authorized(reg *testenv.Registry, mark int) int {
	n := 0
	for _, q := range reg.Requests(mark) {
		if q.Status != 401 {
			n++
		}
	}
	return n
}

// TestPushCredentialsPerRegistry: a plan reaching two registries, both
// with TLS and the same htpasswd account. --dest-creds is refused before
// any request; --creds-for sends the password to the named registry only,
// which the other proves by refusing every request (with the same
// account, it would accept them had it got the password).
func TestPushCredentialsPerRegistry(t *testing.T) {
	const user, password = "nixpush", "s3cret-PerRegistry"
	regA := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	regB := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc, built := fixture(t)
	dir := t.TempDir()
	plan, _ := json.Marshal(registry.Plan{Images: []registry.Image{{
		Source: desc, Destinations: []string{"docker://" + regA.Host + "/app:v1", "docker://" + regB.Host + "/app:v1"},
	}}})
	planFile := filepath.Join(dir, "plan.json")
	writeFile(t, planFile, string(plan))
	// Both are on 127.0.0.1: unverified TLS is allowed to carry credentials
	// there, and spares a certificate directory for two CAs.
	common := []string{"push", "--dest-tls-verify=false", "--retry-times=0", "--keep-going", "--plan", planFile}
	env := []string{"NIXPUSH_DEST_PASSWORD=" + password}
	noSecret := func(t *testing.T, r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Errorf("the password is printed:\n%s", r.stderr)
		}
	}

	t.Run("dest-creds refused for two registries", func(t *testing.T) {
		markA, markB := regA.Mark(), regB.Mark()
		for _, args := range [][]string{
			append(common, "--dest-creds", user+":"+password),
			append(common, "--dest-creds", user),
		} {
			r := run(t, bin, env, args...)
			if r.err == nil || !strings.Contains(r.stderr, "several registries") || !strings.Contains(r.stderr, "--creds-for") {
				t.Errorf("err %v, stderr:\n%s", r.err, r.stderr)
			}
			noSecret(t, r)
		}
		if n := len(regA.Requests(markA)) + len(regB.Requests(markB)); n != 0 {
			t.Errorf("%d requests made before the refusal", n)
		}
	})

	for _, tc := range []struct {
		name, stdin string
		env, args   []string
	}{
		{"creds-for, password in env", "", env, []string{"--creds-for", regA.Host + "=" + user}},
		{"creds-for, password on stdin", password + "\n", nil, []string{"--creds-for", regA.Host + "=" + user, "--dest-password-stdin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			markA, markB := regA.Mark(), regB.Mark()
			r := runStdin(t, bin, tc.stdin, tc.env, append(common, tc.args...)...)
			noSecret(t, r)
			if got, want := strings.TrimSpace(r.stdout), built.ManifestDigest.String()+" "+regA.Host+"/app:v1"; got != want {
				t.Errorf("stdout %q, want only %q\nstderr:\n%s", got, want, r.stderr)
			}
			if r.err == nil || !strings.Contains(r.stderr, "401") {
				t.Errorf("the push to %s did not fail unauthorized: err %v\n%s", regB.Host, r.err, r.stderr)
			}
			if n := authorized(regA, markA); n == 0 {
				t.Errorf("%s accepted no request", regA.Host)
			}
			if n := authorized(regB, markB); n != 0 {
				t.Errorf("%s accepted %d requests: it got the credentials of %s", regB.Host, n, regA.Host)
			}
		})
	}

	t.Run("usage errors, before any request", func(t *testing.T) {
		markA, markB := regA.Mark(), regB.Mark()
		for _, tc := range []struct {
			name, want, stdin string
			env, args         []string
		}{
			{"password in creds-for", "no password in arguments", "", env, []string{"--creds-for", regA.Host + "=" + user + ":" + password}},
			{"no password anywhere", "no password for", "", nil, []string{"--creds-for", regA.Host + "=" + user}},
			{"empty password on stdin", "stdin is empty", "\n", nil, []string{"--creds-for", regA.Host + "=" + user, "--dest-password-stdin"}},
			{"one env password, two hosts", "gives one password", "", env, []string{"--creds-for", regA.Host + "=" + user, "--creds-for", regB.Host + "=" + user}},
			{"stdin unused", "no credential without a password", password, nil, []string{"--dest-password-stdin"}},
			{"misspelt host", "no destination is on this registry", "", env, []string{"--creds-for", "127.0.0.2:1=" + user}},
			{"both forms", "one or the other", "", env, []string{"--creds-for", regA.Host + "=" + user, "--dest-creds", user}},
		} {
			r := runStdin(t, bin, tc.stdin, tc.env, append(common, tc.args...)...)
			if r.err == nil || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: err %v, stderr does not say %q:\n%s", tc.name, r.err, tc.want, r.stderr)
			}
			noSecret(t, r)
		}
		if n := len(regA.Requests(markA)) + len(regB.Requests(markB)); n != 0 {
			t.Errorf("%d requests made", n)
		}
	})
}

// TestInsecureCredentials: credentials of any source are not sent without
// TLS verification (which lets containers/image fall back to plain HTTP)
// to a host that is not loopback, unless named by --insecure-creds-host.
// The refusal comes before any connection: registry.example.com does not
// resolve here, so reaching it would fail otherwise.
func TestInsecureCredentials(t *testing.T) {
	bin := buildNixpush(t)
	desc, built := fixture(t)
	const remote = "registry.example.com"
	dest := "docker://" + remote + "/app:v1"
	env := []string{"NIXPUSH_DEST_PASSWORD=pw", "NIXPUSH_SRC_PASSWORD=pw"}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, authFile, `{"auths": {"`+remote+`": {"auth": "dXNlcjpwdw=="}}}`)
	const refused = "credentials would be sent without TLS verification"

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"push, dest-creds", []string{"push", "--retry-times=0", "--dest-tls-verify=false", "--dest-creds", "ci", "nix:" + desc, dest}},
		{"push, creds-for", []string{"push", "--retry-times=0", "--dest-tls-verify=false", "--creds-for", remote + "=ci", "nix:" + desc, dest}},
		{"push, auth file", []string{"push", "--retry-times=0", "--dest-tls-verify=false", "--authfile", authFile, "nix:" + desc, dest}},
		{"copy, dest-creds", []string{"copy", "--dest-tls-verify=false", "--dest-creds", "ci", "nix:" + desc, dest}},
		{"copy, src-creds", []string{"copy", "--src-tls-verify=false", "--src-creds", "ci", dest, "oci:" + t.TempDir() + ":v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, bin, env, tc.args...)
			if r.err == nil || !strings.Contains(r.stderr, refused) || !strings.Contains(r.stderr, "--insecure-creds-host "+remote) {
				t.Errorf("err %v, stderr does not refuse:\n%s", r.err, r.stderr)
			}
			// Named, the host is tried (and cannot be reached here).
			r = run(t, bin, env, append([]string{tc.args[0], "--insecure-creds-host", remote}, tc.args[1:]...)...)
			if r.err == nil || strings.Contains(r.stderr, refused) {
				t.Errorf("with --insecure-creds-host: err %v, stderr:\n%s", r.err, r.stderr)
			}
		})
	}

	t.Run("loopback", func(t *testing.T) {
		reg := testenv.StartRegistry(t)
		for _, cmd := range []string{"push", "copy"} {
			r := run(t, bin, env, cmd, "--dest-tls-verify=false", "--dest-creds", "ci", "nix:"+desc, "docker://"+reg.Host+"/app:v1")
			if r.err != nil || !strings.Contains(r.stdout, built.ManifestDigest.String()) {
				t.Errorf("%s to %s: %v\n%s", cmd, reg.Host, r.err, r.stderr)
			}
		}
	})
}

// TestCopyPasswordSources: copy takes --dest-creds USER with the password
// on stdin or in $NIXPUSH_DEST_PASSWORD; with neither, and no terminal, it
// fails before any request, never trying an empty password.
func TestCopyPasswordSources(t *testing.T) {
	const user, password = "nixpush", "s3cret-Stdin-pw"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc, built := fixture(t)
	dest := "docker://" + reg.Host + "/app:v1"
	certs := "--dest-cert-dir=" + reg.CertDir
	for _, tc := range []struct {
		name, stdin string
		env, args   []string
	}{
		{"stdin", password + "\n", nil, []string{"--dest-creds", user, "--dest-password-stdin"}},
		{"env", "", []string{"NIXPUSH_DEST_PASSWORD=" + password}, []string{"--dest-creds", user}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runStdin(t, bin, tc.stdin, tc.env, append([]string{"copy", "-q", certs}, append(tc.args, "nix:"+desc, dest)...)...)
			if r.err != nil || lastLine(r.stdout) != built.ManifestDigest.String() {
				t.Errorf("copy: %v\n%s", r.err, r.stderr)
			}
		})
	}
	t.Run("no password", func(t *testing.T) {
		mark := reg.Mark()
		for _, creds := range []string{user, user + ":"} {
			r := run(t, bin, nil, "copy", certs, "--dest-creds", creds, "nix:"+desc, dest)
			if r.err == nil || !strings.Contains(r.stderr, "no password for "+user) {
				t.Errorf("--dest-creds %s: err %v\n%s", creds, r.err, r.stderr)
			}
		}
		r := runStdin(t, bin, "pw", nil, "copy", certs, "--src-creds", user, "--src-password-stdin", "--dest-creds", user, "--dest-password-stdin", "nix:"+desc, dest)
		if r.err == nil || !strings.Contains(r.stderr, "stdin holds one password") {
			t.Errorf("both from stdin: err %v\n%s", r.err, r.stderr)
		}
		if n := len(reg.Requests(mark)); n != 0 {
			t.Errorf("%d requests made", n)
		}
	})
}

// TestDestinationNeedsRegistry: push refuses a destination without a
// registry host instead of pushing it to Docker Hub.
func TestDestinationNeedsRegistry(t *testing.T) {
	bin := buildNixpush(t)
	desc, _ := fixture(t)
	plan := filepath.Join(t.TempDir(), "plan.json")
	writeFile(t, plan, `{"images": [{"image": "`+desc+`", "destinations": ["app:v1"]}]}`)
	for _, args := range [][]string{
		{"push", "--retry-times=0", "nix:" + desc, "docker://app:v1"},
		{"push", "--retry-times=0", "nix:" + desc, "docker://team/app:v1"},
		{"push", "--retry-times=0", "--plan", plan},
	} {
		r := run(t, bin, nil, args...)
		if r.err == nil || !strings.Contains(r.stderr, "no registry host") || !strings.Contains(r.stderr, "docker.io/") {
			t.Errorf("%v: err %v\n%s", args, r.err, r.stderr)
		}
	}
}

// TestAdditionalTagOtherRegistry: --additional-tag on another registry is
// refused before anything is copied, with an error that says so.
func TestAdditionalTagOtherRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	desc, _ := fixture(t)
	mark := reg.Mark()
	r := run(t, bin, nil, "copy", "--dest-tls-verify=false", "--additional-tag", "other.example/app:v1", "nix:"+desc, "docker://"+reg.Host+"/app:v1")
	if r.err == nil || !strings.Contains(r.stderr, "not on the destination's registry "+reg.Host) || strings.Contains(r.stderr, "mount-from") {
		t.Errorf("err %v\n%s", r.err, r.stderr)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() || q.IsManifestWrite() {
			t.Errorf("written before the refusal: %s", q)
		}
	}
}
