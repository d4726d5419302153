package nix_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// baseExpr is the Nix file of the base image tests: base is pulled with
// pull (a pullImage call), image is built on it.
func (e env) baseExpr(t *testing.T, pull, appName string) string {
	t.Helper()
	src := fmt.Sprintf(`{ nixpush, busybox }:
let
  np = import %q { inherit nixpush; };
  ex = import %q { inherit nixpush busybox; };
  bb = ex.busybox;
in
rec {
  base = %s;
  appfiles = builtins.derivation {
    name = "appfiles";
    system = builtins.currentSystem;
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-e" "-c" "${bb}/bin/busybox mkdir -p $out/etc && echo app > $out/etc/app-marker" ];
  };
  image = np.buildImage {
    name = %q;
    fromImage = base;
    copyToRoot = [ appfiles ];
    maxLayers = 2;
    config = {
      Entrypoint = [ "${ex.hello}/bin/hello" ];
      Env = [ "OVERRIDE=app" "APP=1" ];
      Labels."app.label" = "2";
    };
  };
  # A nixpush image as base: its layers are reused exactly.
  family = np.buildImage {
    name = "family";
    fromImage = image;
    copyToRoot = [ appfiles ex.hello ];
    config.Cmd = [ "--family" ];
  };
}
`, filepath.Join(e.repo, "nix"), filepath.Join(e.repo, "nix", "examples"), pull, appName)
	f := filepath.Join(t.TempDir(), "base.nix")
	writeFileMode(t, f, src, 0o644)
	return f
}

func (e env) build(t *testing.T, file, attr string, extra ...string) (string, error) {
	t.Helper()
	return testenv.NixBuild(t, append(append([]string{file, "-A", attr}, e.args()...), extra...)...)
}

// TestBaseImage pulls a base image in the Nix sandbox (TLS with the
// tests' CA and credentials, and plain HTTP), builds an image on it,
// pushes it to a second registry and to the base's own (mounting the
// base's layers there), runs it with podman and checks what every tool
// sees.
func TestBaseImage(t *testing.T) {
	e := setup(t)
	baseReg := testenv.StartRegistry(t, testenv.WithTLSAuth("puller", "base-secret"))
	b := makeBase(t, e, baseReg)
	ca := filepath.Join(baseReg.CertDir, "ca.crt")
	auth, err := os.ReadFile(b.authFile)
	if err != nil {
		t.Fatal(err)
	}

	// nixpush lock resolves the tag to the index and hashes the layout.
	lockFile, lock := e.lock(t, []string{"REGISTRY_AUTH_FILE=" + b.authFile}, "--ca-cert", ca, "--arch", "amd64", "docker://"+b.repo+":multi")
	if lock["imageName"] != b.repo || lock["imageDigest"] != b.index.String() || lock["os"] != "linux" || lock["arch"] != "amd64" || !strings.HasPrefix(lock["sha256"], "sha256-") {
		t.Fatalf("lock = %v; want %s@%s for linux/amd64", lock, b.repo, b.index)
	}

	t.Logf("lock: %v", lock)
	// pullImage in the sandbox, over TLS with the tests' CA; the
	// credentials come from the environment, never the derivation.
	t.Setenv("NIXPUSH_AUTH", string(auth))
	appRepo := "127.0.0.1/app" // renamed by the copies below
	file := e.baseExpr(t, fmt.Sprintf(`np.pullImageFromLockWith %q { caCert = %q; }`, lockFile, ca), appRepo)
	pulled, err := e.build(t, file, "base")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, pulled, b)
	drv, err := testenv.Nix(t, "nix-store", "-q", "--deriver", pulled)
	if err != nil {
		t.Fatal(err)
	}
	if show, err := testenv.Nix(t, "nix", "show-derivation", drv); err != nil {
		t.Fatal(err)
	} else if strings.Contains(show, "base-secret") || strings.Contains(show, strings.TrimSpace(string(auth))) {
		t.Errorf("the derivation holds the credentials:\n%s", show)
	}

	image, err := e.build(t, file, "image")
	if err != nil {
		t.Fatal(err)
	}
	img := readImage(t, image)
	if img.Version != 3 {
		t.Errorf("version %d, want 3 (blob layers)", img.Version)
	}
	n := len(b.amd64.Layers)
	for i, bl := range b.amd64.Layers {
		l := img.Layers[i]
		if l.Blob == nil || l.Digest != bl.Digest || l.Size != bl.Size || l.MediaType != ocispec.MediaTypeImageLayerGzip ||
			l.Blob.Path != pulled || l.Blob.Repository != b.repo {
			t.Errorf("layers[%d] = %+v (blob %+v); want the base's layer %s as pulled into %s", i, l, l.Blob, bl.Digest, pulled)
		}
	}
	if len(img.Layers) <= n || img.Layers[n].Blob != nil {
		t.Fatalf("image has %d layers; want the base's %d then Nix layers", len(img.Layers), n)
	}
	e.verify(t, image)
	// The description refers to the pulled layout: nix copy of the image
	// brings the base's layers.
	if refs, err := testenv.Nix(t, "nix-store", "-q", "--references", image); err != nil || !slices.Contains(strings.Fields(refs), pulled) {
		t.Errorf("%s refers to %q (%v), not to the pulled base %s", image, refs, err, pulled)
	}
	family, err := e.build(t, file, "family")
	if err != nil {
		t.Fatal(err)
	}
	fam := readImage(t, family)
	if len(fam.Layers) != len(img.Layers)+1 {
		t.Errorf("family has %d layers; want the base image's %d, then one of its own (its other paths are the base's)", len(fam.Layers), len(img.Layers))
	}
	for i := range min(len(img.Layers), len(fam.Layers)) {
		if fam.Layers[i].Digest != img.Layers[i].Digest {
			t.Errorf("family layers[%d] = %s, want the base image's %s", i, fam.Layers[i].Digest, img.Layers[i].Digest)
		}
	}
	if c := fam.Config; len(c.Entrypoint) != 1 || !slices.Equal(c.Cmd, []string{"--family"}) || c.WorkingDir != "/srv" || len(fam.BaseHistory) != len(img.BaseHistory) {
		t.Errorf("family config %+v: want the base image's Entrypoint and WorkingDir, its own Cmd", c)
	}
	if out, err := e.run(t, nil, "inspect", "nix:"+image); err != nil || !strings.Contains(out, "base layer "+ocispec.MediaTypeImageLayerGzip+", as pulled from "+b.repo) {
		t.Errorf("nixpush inspect: %v\n%s", err, out)
	}

	// Bit for bit the same on a rebuild.
	for _, attr := range []string{"base", "image"} {
		if _, err := e.build(t, file, attr, "--check"); err != nil {
			t.Errorf("nix-build --check -A %s: %v", attr, err)
		}
	}

	// Push to a second registry, then check with skopeo and podman.
	reg2 := testenv.StartRegistry(t)
	dest := reg2.Host + "/app:v1"
	if _, err := e.run(t, nil, "copy", "--dest-tls-verify=false", "nix:"+image, "docker://"+dest); err != nil {
		t.Fatal(err)
	}
	checkPushed(t, b, n, dest, "--tls-verify=false")
	runOnBase(t, dest)

	// nixpush push (the plan engine) to another repository, and a copy to
	// an OCI layout that umoci unpacks: the base's files and the Nix ones.
	if _, err := e.run(t, nil, "push", "--dest-tls-verify=false", image, "docker://"+reg2.Host+"/pushed:v1"); err != nil {
		t.Fatal(err)
	}
	checkPushed(t, b, n, reg2.Host+"/pushed:v1", "--tls-verify=false")
	layout := filepath.Join(t.TempDir(), "oci")
	if _, err := e.run(t, nil, "copy", "nix:"+image, "oci:"+layout+":v1"); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, nil, testenv.Tool(t, "umoci"), "unpack", "--image", layout+":v1", bundle)
	for _, f := range []string{"etc/base-marker", "bin/busybox", "etc/app-marker"} {
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", f)); err != nil {
			t.Errorf("umoci unpack of the oci: copy: %v", err)
		}
	}

	// A re-push from an empty HOME uploads nothing.
	mark := reg2.Mark()
	if _, err := e.run(t, []string{"HOME=" + t.TempDir()}, "copy", "--dest-tls-verify=false", "nix:"+image, "docker://"+dest); err != nil {
		t.Fatal(err)
	}
	for _, q := range reg2.Requests(mark) {
		if q.IsBlobWrite() || q.IsManifestWrite() {
			t.Errorf("re-push wrote: %s", q)
		}
	}

	// To the base's own registry: the base's layers are mounted from its
	// repository, not uploaded.
	mark = baseReg.Mark()
	dest = baseReg.Host + "/app:v1"
	if _, err := e.run(t, nil, "copy", "--dest-cert-dir", baseReg.CertDir, "--authfile", b.authFile, "nix:"+image, "docker://"+dest); err != nil {
		t.Fatal(err)
	}
	reqs := baseReg.Requests(mark)
	for _, bl := range b.amd64.Layers {
		if !slices.ContainsFunc(reqs, func(q testenv.Request) bool {
			u, err := url.Parse(q.Path)
			return err == nil && q.Method == "POST" && q.Status == 201 &&
				u.Query().Get("mount") == bl.Digest.String() && u.Query().Get("from") == "base"
		}) {
			t.Errorf("no mount of %s from base (201) in the registry log:\n%v", bl.Digest, reqs)
		}
		for _, q := range reqs {
			if q.Method == "PUT" && strings.Contains(q.Path, "digest="+bl.Digest.String()) {
				t.Errorf("base layer %s uploaded: %s", bl.Digest, q)
			}
		}
	}
	checkPushed(t, b, n, dest, "--cert-dir", baseReg.CertDir, "--authfile", b.authFile)

	// Plain HTTP with tlsVerify = false: the same index on a registry
	// without TLS, pinned by lock there.
	testenv.Skopeo(t, "copy", "--quiet", "--all", "--preserve-digests", "--src-cert-dir", baseReg.CertDir, "--src-authfile", b.authFile,
		"--dest-tls-verify=false", "docker://"+b.repo+":multi", "docker://"+reg2.Host+"/base:multi")
	t.Setenv("NIXPUSH_AUTH", "")
	lockFile2, lock2 := e.lock(t, nil, "--tls-verify=false", "--arch", "amd64", "docker://"+reg2.Host+"/base:multi")
	if lock2["imageDigest"] != b.index.String() {
		t.Errorf("lock over HTTP: %v, want digest %s", lock2, b.index)
	}
	file2 := e.baseExpr(t, fmt.Sprintf(`np.pullImageFromLockWith %q { tlsVerify = false; }`, lockFile2), appRepo)
	pulled2, err := e.build(t, file2, "base")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, pulled2, baseImage{repo: reg2.Host + "/base", index: b.index, amd64: b.amd64})
}

// checkLayout checks a pulled layout with umoci (it reads it as an OCI
// layout) and against the base's manifest.
func checkLayout(t *testing.T, dir string, b baseImage) {
	t.Helper()
	var idx ocispec.Index
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.Architecture != "amd64" ||
		idx.Manifests[0].Annotations[description.AnnotationPulledName] != b.repo ||
		idx.Manifests[0].Annotations[description.AnnotationPulledDigest] != b.index.String() {
		t.Errorf("index.json = %s", raw)
	}
	for _, l := range b.amd64.Layers {
		f, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", l.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(f) != l.Digest {
			t.Errorf("blob %s holds other bytes", l.Digest)
		}
	}
	// umoci reads the layout (stat lists the history of the manifest the
	// index.json names).
	ref := idx.Manifests[0].Digest.String()
	_ = ref
	out, err := exec.Command(testenv.Tool(t, "skopeo"), "inspect", "oci:"+dir).CombinedOutput()
	if err != nil {
		t.Errorf("skopeo inspect oci:%s: %v\n%s", dir, err, out)
	}
}

// checkPushed checks with skopeo that dest holds the base's layers first,
// as they were (digest, gzip media type), and the merged config.
func checkPushed(t *testing.T, b baseImage, n int, dest string, flags ...string) {
	t.Helper()
	raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, flags...), "docker://"+dest)...)
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for i, bl := range b.amd64.Layers {
		if got := m.Layers[i]; got.Digest != bl.Digest || got.MediaType != ocispec.MediaTypeImageLayerGzip || got.Size != bl.Size {
			t.Errorf("%s: layers[%d] = %+v, want the base's %+v", dest, i, got, bl)
		}
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(testenv.Skopeo(t, append(append([]string{"inspect", "--config", "--raw"}, flags...), "docker://"+dest)...), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	wantEnv := []string{"PATH=/bin", "BASE_ONLY=base", "OVERRIDE=app", "APP=1"}
	if !slices.Equal(c.Env, wantEnv) || c.WorkingDir != "/srv" || len(c.Cmd) != 0 || len(c.Entrypoint) != 1 ||
		c.Labels["base.label"] != "1" || c.Labels["app.label"] != "2" {
		t.Errorf("%s: config %+v; want Env %v, WorkingDir /srv, the base's Cmd cleared by the Entrypoint, both labels", dest, c, wantEnv)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || len(cfg.History) < n+1 {
		t.Errorf("%s: %d diff_ids, %d history entries for %d layers", dest, len(cfg.RootFS.DiffIDs), len(cfg.History), len(m.Layers))
	}
}

// runOnBase runs the image with podman: the base's files, inherited Env
// and WorkingDir, and the Nix paths are there.
func runOnBase(t *testing.T, ref string) {
	t.Helper()
	podman := testenv.Tool(t, "podman")
	env := testenv.PodmanEnv(t)
	out := run(t, env, podman, "run", "--rm", "--tls-verify=false", ref)
	if !strings.Contains(out, "hello from nixpush") {
		t.Errorf("podman run %s printed %q, want the Nix entrypoint's greeting", ref, out)
	}
	out = run(t, env, podman, "run", "--rm", "--tls-verify=false", "--entrypoint", "/bin/sh", ref,
		"-c", `pwd; echo "$OVERRIDE $BASE_ONLY $APP"; cat /etc/base-marker /etc/app-marker; ls /nix/store`)
	for _, want := range []string{"/srv\n", "app base 1\n", "base amd64\n", "app\n", "-hello\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("podman run %s: output lacks %q:\n%s", ref, want, out)
		}
	}
}
