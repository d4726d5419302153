package nix_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// The flake tests run flake.nix with nixpkgs replaced by
// testdata/nixpkgs-standin (nixpkgs cannot be downloaded where nixpush is
// developed; see that directory's README.md).

// flakeEnv is a copy of the repository's tracked files in a fresh git
// repository, and the assembled nixpkgs stand-in.
type flakeEnv struct {
	repo, standin, home, system string
}

func setupFlake(t *testing.T) flakeEnv {
	t.Helper()
	testenv.RequireNix(t)
	testenv.Tool(t, "nix")
	git := testenv.Tool(t, "git")
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	f := flakeEnv{
		repo:    filepath.Join(dir, "repo"),
		standin: filepath.Join(dir, "standin"),
		home:    filepath.Join(dir, "home"),
	}

	// The stand-in: its flake.nix and the two prebuilt binaries.
	bin := filepath.Join(f.standin, "prebuilt", "bin")
	mustMkdir(t, bin)
	mustMkdir(t, f.home)
	copyFile(t, filepath.Join(root, "testdata", "nixpkgs-standin", "flake.nix"), filepath.Join(f.standin, "flake.nix"))
	copyFile(t, filepath.Join(testenv.NixpushDir(t), "bin", "nixpush"), filepath.Join(bin, "nixpush"))
	copyFile(t, filepath.Join(testenv.BusyboxDir(t), "bin", "busybox"), filepath.Join(bin, "busybox"))

	// The repository as a flake sees it: tracked files only.
	// safe.directory: a checkout owned by another user (sudo) is read too.
	ls := exec.Command(git, "-c", "safe.directory="+root, "ls-files", "-z", "--cached")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a symlink
		}
		dst := filepath.Join(f.repo, name)
		mustMkdir(t, filepath.Dir(dst))
		copyFile(t, src, dst)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}} {
		cmd := exec.Command(git, args...)
		cmd.Dir = f.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	sys, err := f.nix(t, "eval", "--impure", "--json", "--expr", "builtins.currentSystem")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(sys), &f.system); err != nil {
		t.Fatal(err)
	}
	return f
}

// nixArgs puts the options of every flake command (flakes on, no lock
// file written) after the subcommand's words and before any "--".
func (f flakeEnv) nixArgs(sub string, args ...string) []string {
	words := []string{sub}
	if sub == "flake" && len(args) > 0 {
		words, args = append(words, args[0]), args[1:]
	}
	opts := []string{"--extra-experimental-features", "nix-command flakes"}
	if !contains(args, "--expr") {
		opts = append(opts, "--no-write-lock-file")
	}
	return append(append(words, opts...), args...)
}

// nix runs a nix command with a private HOME and returns its stdout.
func (f flakeEnv) nix(t *testing.T, sub string, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := f.run(t, sub, args...)
	if err != nil {
		return "", fmt.Errorf("nix %s %s: %w\n%s", sub, strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(stdout), nil
}

func (f flakeEnv) run(t *testing.T, sub string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("nix", f.nixArgs(sub, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+f.home, "XDG_CACHE_HOME="+filepath.Join(f.home, ".cache"),
		"XDG_RUNTIME_DIR="+f.home, "REGISTRY_AUTH_FILE="+filepath.Join(f.home, "none.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func (f flakeEnv) override() []string {
	return []string{"--override-input", "nixpkgs", "path:" + f.standin}
}

func TestFlakeOutputs(t *testing.T) {
	f := setupFlake(t)
	// Evaluates every output of every system and builds the checks
	// (nixpush through the stand-in, and the example images for real).
	if _, err := f.nix(t, "flake", append([]string{"check", f.repo}, f.override()...)...); err != nil {
		t.Fatal(err)
	}
	for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
		for attr, want := range map[string]string{
			"packages." + sys:                      `["default","example-index","example-layered","example-layered-zstd","example-minimal","nixpush"]`,
			"apps." + sys:                          `["default","nixpush","push"]`,
			"lib." + sys:                           `["buildImage","buildIndex","buildLayer","plan","pullImage","pullImageFromLock","pullImageFromLockWith","users"]`,
			"devShells." + sys:                     `["default"]`,
			"packages." + sys + ".example-layered": `["app","app","app","app"]`,
		} {
			apply := "builtins.attrNames"
			if strings.HasSuffix(attr, "example-layered") {
				apply = `x: map (n: x.${n}.type) [ "copyTo" "copyToDockerDaemon" "copyToPodman" "copyToRegistry" ]`
			}
			got, err := f.nix(t, "eval", append([]string{"--json", f.repo + "#" + attr, "--apply", apply}, f.override()...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: %s, want %s", attr, got, want)
			}
		}
	}
	// The example image is arm64 on aarch64-linux.
	got, err := f.nix(t, "eval", append([]string{"--json", f.repo + "#packages.aarch64-linux.example-minimal.arch"}, f.override()...)...)
	if err != nil || got != `"arm64"` {
		t.Errorf("aarch64-linux example arch: %s %v, want \"arm64\"", got, err)
	}
	// example-layered-zstd is example-layered with zstd layers: the same
	// tars (diffIDs), other blobs.
	plain, zstd := f.image(t, "example-layered"), f.image(t, "example-layered-zstd")
	if layersVersion(plain) != 1 || layersVersion(zstd) != 2 || len(plain.Layers) != len(zstd.Layers) {
		t.Fatalf("example-layered: version %d without its SBOM, %d layers; example-layered-zstd: version %d without its SBOM, %d layers",
			layersVersion(plain), len(plain.Layers), layersVersion(zstd), len(zstd.Layers))
	}
	for i, l := range zstd.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerZstd || l.DiffID != plain.Layers[i].DiffID || l.Digest == plain.Layers[i].Digest {
			t.Errorf("example-layered-zstd layer %d: %s, diffID %s, digest %s; example-layered's: diffID %s, digest %s",
				i, l.MediaType, l.DiffID, l.Digest, plain.Layers[i].DiffID, plain.Layers[i].Digest)
		}
	}
}

// TestFlakeIndex: the flake's example index holds the example
// application for amd64 and arm64, and carries the apps of an image.
func TestFlakeIndex(t *testing.T) {
	f := setupFlake(t)
	out := f.build(t, "example-index")
	idx, err := description.ReadIndexFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("example-index: %+v, want amd64 and arm64", idx.Manifests)
	}
	if _, err := idx.ReadImages(); err != nil {
		t.Fatal(err)
	}
	got, err := f.nix(t, "eval", append([]string{"--json", f.repo + "#packages." + f.system + ".example-index.copyToRegistry.type"}, f.override()...)...)
	if err != nil || got != `"app"` {
		t.Errorf("example-index.copyToRegistry: %s %v", got, err)
	}
}

// build builds packages.<system>.attr of the flake and returns its output.
func (f flakeEnv) build(t *testing.T, attr string) string {
	t.Helper()
	out, err := f.nix(t, "build", append([]string{"--json", "--no-link", f.repo + "#packages." + f.system + "." + attr}, f.override()...)...)
	if err != nil {
		t.Fatal(err)
	}
	var built []struct {
		Outputs struct {
			Out string `json:"out"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(out), &built); err != nil || len(built) != 1 {
		t.Fatalf("nix build --json: %q: %v", out, err)
	}
	return built[0].Outputs.Out
}

// image builds packages.<system>.attr of the flake and reads the image
// description.
func (f flakeEnv) image(t *testing.T, attr string) *description.Image {
	t.Helper()
	img, err := description.ReadFile(f.build(t, attr))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestFlakeLock checks that Nix takes flake.lock as it is: nixpkgs
// locked to the pinned revision, nothing re-locked (which would need the
// network).
func TestFlakeLock(t *testing.T) {
	f := setupFlake(t)
	stdout, stderr, err := f.run(t, "flake", "metadata", "--json", f.repo)
	if err != nil {
		t.Fatalf("nix flake metadata: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "input '") {
		t.Errorf("flake.lock was not taken as it is:\n%s", stderr)
	}
	var meta struct {
		Locks struct {
			Nodes map[string]struct {
				Locked   map[string]any `json:"locked"`
				Original map[string]any `json:"original"`
			} `json:"nodes"`
		} `json:"locks"`
	}
	if err := json.Unmarshal([]byte(stdout), &meta); err != nil {
		t.Fatal(err)
	}
	n := meta.Locks.Nodes["nixpkgs"]
	if n.Locked["rev"] != "567a49d1913ce81ac6e9582e3553dd90a955875f" || n.Original["ref"] != "nixos-unstable" {
		t.Errorf("nixpkgs locked to %v (original %v), want nixos-unstable at 567a49d1", n.Locked, n.Original)
	}
}

const flakeSecret = "flake-s3cret-must-not-leak"

// TestFlakePushApp runs the flake's own push app (the layered example's
// copyTo) to a TLS+htpasswd registry.
func TestFlakePushApp(t *testing.T) {
	f := setupFlake(t)
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth("user", flakeSecret))
	ref := reg.Host + "/flake-layered:v1"
	args := append([]string{f.repo + "#push"}, f.override()...)
	args = append(args, "--", "docker://"+ref, "--dest-creds", "user:"+flakeSecret, "--dest-cert-dir", reg.CertDir)
	stdout, stderr, err := f.run(t, "run", args...)
	if err != nil {
		t.Fatalf("nix run .#push: %v\n%s%s", err, stdout, stderr)
	}
	noSecret(t, flakeSecret, stdout, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if got, want := inspectDigest(t, reg, ref), lines[len(lines)-1]; got != want {
		t.Fatalf("registry has %s at %s, nix run printed %s", got, ref, want)
	}
}

// TestFlakeConsumer is the README's use: another flake builds an image
// with nixpush.lib and sets apps.<system>.push = image.copyToRegistry.
func TestFlakeConsumer(t *testing.T) {
	f := setupFlake(t)
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth("user", flakeSecret))
	consumer := filepath.Join(t.TempDir(), "consumer")
	mustMkdir(t, consumer)
	writeFile(t, filepath.Join(consumer, "flake.nix"), fmt.Sprintf(`{
  inputs.nixpush.url = "git+file://%s";
  outputs = { self, nixpush }:
    let
      system = %q;
      busybox = nixpush.inputs.nixpkgs.legacyPackages.${system}.pkgsStatic.busybox;
      image = nixpush.lib.${system}.buildImage {
        name = "%s/consumer";
        tag = "v1";
        config.Entrypoint = [ "${busybox}/bin/busybox" "sh" ];
      };
    in {
      packages.${system}.default = image;
      apps.${system}.push = image.copyToRegistry;
    };
}
`, f.repo, f.system, reg.Host))

	args := []string{"path:" + consumer + "#push", "--override-input", "nixpush/nixpkgs", "path:" + f.standin,
		"--", "--dest-creds", "user:" + flakeSecret, "--dest-cert-dir", reg.CertDir}
	stdout, stderr, err := f.run(t, "run", args...)
	if err != nil {
		t.Fatalf("nix run consumer#push: %v\n%s%s", err, stdout, stderr)
	}
	noSecret(t, flakeSecret, stdout, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if got, want := inspectDigest(t, reg, reg.Host+"/consumer:v1"), lines[len(lines)-1]; got != want {
		t.Fatalf("registry has %s, nix run printed %s", got, want)
	}
}

// TestVendorHash checks nix/package.nix's vendorHash against the NAR hash
// of what "go mod vendor" makes now, as nixpkgs' buildGoModule computes it.
func TestVendorHash(t *testing.T) {
	testenv.Tool(t, "nix")
	goBin := testenv.Tool(t, "go")
	root := testenv.RepoRoot(t)
	pkg, err := os.ReadFile(filepath.Join(root, "nix", "package.nix"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[A-Za-z0-9+/]{43}=)";`).FindSubmatch(pkg)
	if m == nil {
		t.Fatal(`nix/package.nix: no vendorHash = "sha256-…";`)
	}
	vendor := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command(goBin, "mod", "vendor", "-o", vendor)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	got, err := testenv.Nix(t, "nix", "--extra-experimental-features", "nix-command", "hash", "path", vendor)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(m[1]) {
		t.Fatalf("nix/package.nix has vendorHash %s, but go.mod/go.sum now give %s: update it (see the comment there)", m[1], got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src to dst, keeping the executable bits.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()|0o200)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
