package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport"
)

const (
	signPassphrase  = "correct horse battery staple 1f3c"
	wrongPassphrase = "incorrect mule battery staple 9d2a"
)

// signKeys generates two key pairs with nixpush generate-sigstore-key:
// the signing key (prefix "release") and another one.
func signKeys(t *testing.T, bin string) (dir, passFile string) {
	t.Helper()
	dir = t.TempDir()
	passFile = filepath.Join(dir, "pass")
	writeFile(t, passFile, signPassphrase+"\n")
	for _, prefix := range []string{"release", "other"} {
		r := run(t, bin, nil, "generate-sigstore-key", "--output-prefix", filepath.Join(dir, prefix), "--passphrase-file", passFile)
		if r.err != nil {
			t.Fatalf("generate-sigstore-key: %v\n%s", r.err, r.stderr)
		}
		checkNoPassphrase(t, r)
		fi, err := os.Stat(filepath.Join(dir, prefix+".private"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.private has mode %v, want 0600", prefix, fi.Mode().Perm())
		}
	}
	// It never overwrites a key.
	if r := run(t, bin, nil, "generate-sigstore-key", "--output-prefix", filepath.Join(dir, "release"), "--passphrase-file", passFile); r.err == nil {
		t.Error("generate-sigstore-key overwrote an existing key")
	}
	return dir, passFile
}

func checkNoPassphrase(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, signPassphrase) || strings.Contains(s, wrongPassphrase) {
			t.Errorf("a passphrase appears in the output:\n%s", s)
		}
	}
}

// sigstorePolicy checks images against a policy.json that requires
// sigstore signatures by the public key pub (matchRepoDigestOrExact: a tag
// needs a signature naming that tag), reading them from sigstore
// attachments as a registries.d file says: the check skopeo and podman
// make, with containers/image's own policy evaluation. (Debian's skopeo
// 1.9.3 cannot make it: its containers/image is patched to reject every
// sigstore signature, "Debian-local change: sigstore disabled".)
func sigstorePolicy(t *testing.T, host, pub string, setSys ...func(*types.SystemContext)) func(ref string) error {
	t.Helper()
	dir := t.TempDir()
	policy := map[string]any{
		"default": []any{map[string]any{"type": "reject"}},
		"transports": map[string]any{
			"docker": map[string]any{host: []any{map[string]any{
				"type": "sigstoreSigned", "keyPath": pub,
				"signedIdentity": map[string]any{"type": "matchRepoDigestOrExact"},
			}}},
			"oci": map[string]any{"": []any{map[string]any{"type": "insecureAcceptAnything"}}},
		},
	}
	b, err := json.Marshal(policy)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "policy.json"), string(b))
	if err := os.Mkdir(filepath.Join(dir, "registries.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "registries.d", "sigstore.yaml"), "default-docker:\n  use-sigstore-attachments: true\n")
	pol, err := signature.NewPolicyFromFile(filepath.Join(dir, "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{
		RegistriesDirPath:           filepath.Join(dir, "registries.d"),
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
		SystemRegistriesConfPath:    "/dev/null",
	}
	for _, set := range setSys {
		set(sys)
	}
	return func(ref string) error {
		pc, err := signature.NewPolicyContext(pol)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Destroy() //nolint:errcheck // only frees memory
		r, err := docker.ParseReference("//" + ref)
		if err != nil {
			t.Fatal(err)
		}
		src, err := r.NewImageSource(context.Background(), sys)
		if err != nil {
			return err
		}
		defer src.Close()
		ok, err := pc.IsRunningImageAllowed(context.Background(), image.UnparsedInstance(src, nil))
		if !ok && err == nil {
			err = errors.New("rejected")
		}
		return err
	}
}

// attachment returns the sigstore attachment (the OCI manifest tagged
// sha256-<hex>.sig) of built's manifest in repo.
func attachment(t *testing.T, reg *testenv.Registry, repo string, built *transport.Built) ocispec.Manifest {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, reg.URL()+"/v2/"+repo+"/manifests/sha256-"+built.ManifestDigest.Encoded()+".sig", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m ocispec.Manifest
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sigstore attachment of %s in %s: %s", built.ManifestDigest, repo, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSignOnPush signs with a key nixpush generated, on copy and push, and
// checks the signatures with skopeo's policy (sigstoreSigned) and cosign.
func TestSignOnPush(t *testing.T) {
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	desc, built := fixture(t)
	keys, passFile := signKeys(t, bin)
	wrongFile := filepath.Join(keys, "wrong")
	writeFile(t, wrongFile, wrongPassphrase+"\n")
	key := filepath.Join(keys, "release.private")
	sign := []string{"--dest-tls-verify=false", "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", passFile}
	dest := "docker://" + reg.Host + "/signed:v1"

	t.Run("wrong passphrase pushes nothing", func(t *testing.T) {
		for _, args := range [][]string{
			{"copy", "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", wrongFile, "nix:" + desc, dest},
			{"push", "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", wrongFile, "nix:" + desc, dest},
			{"copy", "--sign-by-sigstore-private-key", filepath.Join(keys, "missing.private"), "--sign-passphrase-file", passFile, "nix:" + desc, dest},
			{"copy", "--sign-by-sigstore-private-key", filepath.Join(keys, "release.pub"), "--sign-passphrase-file", passFile, "nix:" + desc, dest},
		} {
			mark := reg.Mark()
			r := run(t, bin, nil, args...)
			if r.err == nil {
				t.Fatalf("%s: no error", strings.Join(args, " "))
			}
			if !strings.Contains(r.stderr, "sigstore private key") {
				t.Errorf("%s: the error does not name the key:\n%s", strings.Join(args, " "), r.stderr)
			}
			checkNoPassphrase(t, r)
			if reqs := reg.Requests(mark); len(reqs) > 0 {
				t.Errorf("%s: %d requests made, want none: %v", strings.Join(args, " "), len(reqs), reqs)
			}
		}
	})

	r := run(t, bin, nil, append([]string{"copy", "--additional-tag", "v2", "nix:" + desc, dest}, sign...)...)
	if r.err != nil {
		t.Fatalf("signed copy: %v\n%s", r.err, r.stderr)
	}
	checkNoPassphrase(t, r)
	if got := lastLine(r.stdout); got != built.ManifestDigest.String() {
		t.Fatalf("copy printed %q, want %s", got, built.ManifestDigest)
	}
	// An unsigned push of the same image to another repository.
	if r := run(t, bin, nil, "copy", "--dest-tls-verify=false", "nix:"+desc, "docker://"+reg.Host+"/unsigned:v1"); r.err != nil {
		t.Fatalf("unsigned copy: %v\n%s", r.err, r.stderr)
	}
	// nixpush push (and so plans) signs too: a third tag; the report
	// says it is signed.
	report := filepath.Join(t.TempDir(), "report.json")
	r = run(t, bin, nil, append([]string{"push", "--report", report, "nix:" + desc, "docker://" + reg.Host + "/signed:v3"}, sign...)...)
	if r.err != nil {
		t.Fatalf("signed push: %v\n%s", r.err, r.stderr)
	}
	checkNoPassphrase(t, r)
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), signPassphrase) || !strings.Contains(string(b), `"signed": true`) || !strings.Contains(string(b), `"signatures": 1`) {
		t.Errorf("report does not say the tag was signed (or shows the passphrase):\n%s", b)
	}

	t.Run("policy sigstoreSigned", func(t *testing.T) {
		withKey := sigstorePolicy(t, reg.Host, filepath.Join(keys, "release.pub"))
		for _, tag := range []string{"v1", "v2", "v3"} {
			if err := withKey(reg.Host + "/signed:" + tag); err != nil {
				t.Errorf("the policy with the signing key refused signed:%s:\n%s", tag, err)
			}
		}
		if err := withKey(reg.Host + "/unsigned:v1"); err == nil {
			t.Error("the policy accepted an unsigned image")
		}
		if err := sigstorePolicy(t, reg.Host, filepath.Join(keys, "other.pub"))(reg.Host + "/signed:v1"); err == nil {
			t.Error("the policy accepted the image with another key")
		}
	})

	t.Run("re-push adds no signature", func(t *testing.T) {
		if n := len(attachment(t, reg, "signed", built).Layers); n != 3 {
			t.Fatalf("attachment holds %d signatures, want 3 (v1, v2, v3)", n)
		}
		mark := reg.Mark()
		r := run(t, bin, nil, append([]string{"copy", "--additional-tag", "v2", "nix:" + desc, dest}, sign...)...)
		if r.err != nil {
			t.Fatalf("signed re-copy: %v\n%s", r.err, r.stderr)
		}
		for _, q := range reg.Requests(mark) {
			if q.IsManifestWrite() || q.IsBlobWrite() {
				t.Errorf("re-push wrote: %s", q)
			}
		}
		if !strings.Contains(r.stderr, "0 written, 2 tags already signed") {
			t.Errorf("summary does not say both tags were signed already:\n%s", r.stderr)
		}
		if n := len(attachment(t, reg, "signed", built).Layers); n != 3 {
			t.Errorf("after a re-push, the attachment holds %d signatures, want 3", n)
		}
	})

	t.Run("copy.Image destinations", func(t *testing.T) {
		// A destination with no registry reference has no identity to
		// sign as: refused before anything is written.
		for _, d := range []string{"dir:", "oci:"} {
			out := filepath.Join(t.TempDir(), "out")
			r := run(t, bin, nil, "copy", "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", passFile, "nix:"+desc, d+out)
			if r.err == nil || !strings.Contains(r.stderr, "identity") {
				t.Errorf("signed copy to %s: no error about the identity: %v\n%s", d, r.err, r.stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("signed copy to %s wrote %s", d, out)
			}
			checkNoPassphrase(t, r)
		}
		// From a registry to a registry, copy.Image signs as skopeo does.
		r := run(t, bin, nil, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", passFile,
			"docker://"+reg.Host+"/unsigned:v1", "docker://"+reg.Host+"/copied:v1")
		if r.err != nil {
			t.Fatalf("signed registry copy: %v\n%s", r.err, r.stderr)
		}
		if err := sigstorePolicy(t, reg.Host, filepath.Join(keys, "release.pub"))(reg.Host + "/copied:v1"); err != nil {
			t.Errorf("the policy refused the signed registry copy: %v", err)
		}
	})

	t.Run("cosign", func(t *testing.T) {
		cosign := testenv.Tool(t, "cosign")
		for _, tag := range []string{"v1", "v3"} {
			cmd := exec.Command(cosign, "verify", "--key", filepath.Join(keys, "release.pub"), "--insecure-ignore-tlog",
				"--allow-insecure-registry", "--allow-http-registry", reg.Host+"/signed:"+tag)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("cosign verify signed:%s: %v\n%s", tag, err, out)
			}
		}
		cmd := exec.Command(cosign, "verify", "--key", filepath.Join(keys, "other.pub"), "--insecure-ignore-tlog",
			"--allow-insecure-registry", "--allow-http-registry", reg.Host+"/signed:v1")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("cosign verify with another key passed:\n%s", out)
		}
	})
}

// TestSignAndVerifyTLSAuth signs on a push to a registry with TLS and
// htpasswd auth, and verifies the push against it, with the credentials
// and certificates the one engine's options give.
func TestSignAndVerifyTLSAuth(t *testing.T) {
	const user, password = "nixpush", "s3cret-Pa55word"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc, built := fixture(t)
	keys, passFile := signKeys(t, bin)
	ref := reg.Host + "/signed:v1"
	noSecret := func(t *testing.T, r result) {
		t.Helper()
		checkNoPassphrase(t, r)
		if strings.Contains(r.stdout+r.stderr, password) {
			t.Errorf("the password appears in the output:\n%s%s", r.stdout, r.stderr)
		}
	}

	r := runStdin(t, bin, password, nil, "copy", "--dest-cert-dir", reg.CertDir, "--dest-creds", user, "--dest-password-stdin",
		"--sign-by-sigstore-private-key", filepath.Join(keys, "release.private"), "--sign-passphrase-file", passFile, "nix:"+desc, "docker://"+ref)
	if r.err != nil {
		t.Fatalf("signed copy: %v\n%s", r.err, r.stderr)
	}
	noSecret(t, r)
	withCreds := func(sys *types.SystemContext) {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolFalse
		sys.DockerCertPath = reg.CertDir
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: password}
	}
	if err := sigstorePolicy(t, reg.Host, filepath.Join(keys, "release.pub"), withCreds)(ref); err != nil {
		t.Errorf("the policy refused the signed image: %v", err)
	}
	if err := sigstorePolicy(t, reg.Host, filepath.Join(keys, "other.pub"), withCreds)(ref); err == nil {
		t.Error("the policy accepted the image with another key")
	}

	r = runStdin(t, bin, password, nil, "verify", "--cert-dir", reg.CertDir, "--creds", user, "--password-stdin", "nix:"+desc, "docker://"+ref)
	if r.err != nil || !strings.HasPrefix(r.stdout, "identical: ") || !strings.Contains(r.stdout, built.ManifestDigest.String()) {
		t.Errorf("verify with credentials: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	noSecret(t, r)
	r = run(t, bin, nil, "verify", "--cert-dir", reg.CertDir, "nix:"+desc, "docker://"+ref)
	if r.err == nil || !strings.Contains(r.stderr, "authentication required") {
		t.Errorf("verify without credentials: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}
