package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// greetingImage is a Nix expression for an image whose entry point is a
// script printing greeting (its own store path, in the image's second
// layer) on top of a busybox layer, with GREETING in its Env.
const greetingImage = `{ repo, nixpush, busybox, greeting }:
let
  np = import (repo + "/nix") { inherit nixpush; };
  bb = builtins.path { path = busybox; name = "busybox"; };
  bin = "${bb}/bin/busybox";
  hello = builtins.derivation {
    name = "hello-${greeting}";
    system = builtins.currentSystem;
    builder = bin;
    args = [ "sh" "-e" "-c" ''
      ${bin} mkdir -p $out/bin
      ${bin} printf '#!${bin} sh\necho ${greeting}\n' > $out/bin/hello
      ${bin} chmod 0755 $out/bin/hello
    '' ];
  };
in np.buildImage {
  name = "supply-chain";
  layers = [ (np.buildLayer { deps = [ bb ]; }) ];
  maxLayers = 2;
  config = {
    Entrypoint = [ "${hello}/bin/hello" ];
    Env = [ "GREETING=${greeting}" ];
  };
}
`

// buildGreeting builds greetingImage with the real nix-build.
func buildGreeting(t *testing.T, greeting string) (string, *description.Image) {
	t.Helper()
	testenv.RequireNix(t)
	expr := filepath.Join(t.TempDir(), "image.nix")
	writeFile(t, expr, greetingImage)
	out, err := testenv.NixBuild(t, expr, "--arg", "repo", testenv.RepoRoot(t), "--arg", "nixpush", testenv.NixpushDir(t),
		"--arg", "busybox", testenv.BusyboxDir(t), "--argstr", "greeting", greeting)
	if err != nil {
		t.Fatal(err)
	}
	img, err := description.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, img
}

// TestSupplyChainNixBuilt is the release and audit story on real Nix
// builds: sign on push, cosign verifies the signature, and verify says
// the registry serves the build identically, and for a tag holding
// another build names the changed config field and the layer with its
// store path.
func TestSupplyChainNixBuilt(t *testing.T) {
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	release, img := buildGreeting(t, "release")
	other, _ := buildGreeting(t, "canary")
	keys, passFile := signKeys(t, bin)
	repo := reg.Host + "/supply-chain"

	if r := run(t, bin, nil, "push", "--dest-tls-verify=false", "--sign-by-sigstore-private-key", filepath.Join(keys, "release.private"), "--sign-passphrase-file", passFile,
		"nix:"+release, "docker://"+repo+":v1", "nix:"+other, "docker://"+repo+":canary"); r.err != nil {
		t.Fatalf("signed push: %v\n%s", r.err, r.stderr)
	}

	cosign := testenv.Tool(t, "cosign")
	cmd := exec.Command(cosign, "verify", "--key", filepath.Join(keys, "release.pub"), "--insecure-ignore-tlog", "--allow-http-registry", repo+":v1")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cosign verify: %v\n%s", err, out)
	}

	r := run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+release, "docker://"+repo+":v1")
	if r.err != nil || !strings.HasPrefix(r.stdout, "identical: ") {
		t.Errorf("verify of the pushed build: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	r = run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+release, "docker://"+repo+":canary")
	if r.err == nil {
		t.Fatalf("verify against another build passed:\n%s", r.stdout)
	}
	app := img.Layers[len(img.Layers)-1]
	var hello string
	for _, p := range app.Paths {
		if strings.HasSuffix(p.Path, "-hello-release") {
			hello = p.Path
		}
	}
	if hello == "" {
		t.Fatalf("no hello-release store path in the last layer: %+v", app.Paths)
	}
	for _, want := range []string{
		`config.Env[0]: description "GREETING=release", registry "GREETING=canary"`,
		"layers[1]: description " + app.Digest.String(),
		"holds " + hello,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "layers[0]") {
		t.Errorf("the shared busybox layer is reported:\n%s", r.stdout)
	}
}
