package nix_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
)

// baseImage is a base image the tests built from real files with umoci
// and pushed gzip-compressed with skopeo, under HOST/base:multi as an
// index of an amd64 and an arm64 image.
type baseImage struct {
	reg      *testenv.Registry
	authFile string
	repo     string        // HOST/base
	index    digest.Digest // of HOST/base:multi
	amd64    ocispec.Manifest
}

// run runs a tool and returns its standard output, failing the test with
// its standard error.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// umociImage adds the tag to the layout: busybox with a few applets, then
// a layer of /etc files, and a config whose Env, WorkingDir, Cmd and
// Labels an image on it inherits.
func umociImage(t *testing.T, e env, layout, tag, arch string) {
	umoci := testenv.Tool(t, "umoci")
	img := layout + ":" + tag
	run(t, nil, umoci, "new", "--image", img)
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, nil, umoci, "unpack", "--image", img, bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "srv", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(filepath.Join(e.busybox, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	writeFileMode(t, filepath.Join(rootfs, "bin", "busybox"), string(bb), 0o755)
	for _, a := range []string{"sh", "ls", "cat", "pwd", "env", "echo"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	run(t, nil, umoci, "repack", "--image", img, bundle)
	os.RemoveAll(bundle)
	run(t, nil, umoci, "unpack", "--image", img, bundle)
	writeFileMode(t, filepath.Join(rootfs, "etc", "base-marker"), "base "+arch+"\n", 0o644)
	writeFileMode(t, filepath.Join(rootfs, "etc", "os-release"), "ID=nixpush-test-base\n", 0o644)
	run(t, nil, umoci, "repack", "--image", img, bundle)
	run(t, nil, umoci, "config", "--image", img, "--architecture", arch, "--os", "linux",
		"--config.env", "PATH=/bin", "--config.env", "BASE_ONLY=base", "--config.env", "OVERRIDE=base",
		"--config.workingdir", "/srv", "--config.cmd", "sh", "--config.label", "base.label=1")
}

func writeFileMode(t *testing.T, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// makeBase builds the base image's amd64 and arm64 images with umoci,
// pushes them with skopeo (their gzip layers as they are) and puts an
// index of both under HOST/base:multi.
func makeBase(t *testing.T, e env, reg *testenv.Registry) baseImage {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "layout")
	run(t, nil, testenv.Tool(t, "umoci"), "init", "--layout", layout)
	b := baseImage{reg: reg, repo: reg.Host + "/base"}
	tls := []string{"--dest-tls-verify=false"}
	src := []string{"--tls-verify=false"}
	if reg.TLS {
		b.authFile = reg.AuthFile(t)
		tls = []string{"--dest-cert-dir", reg.CertDir, "--dest-authfile", b.authFile}
		src = []string{"--cert-dir", reg.CertDir, "--authfile", b.authFile}
	}
	var idx ocispec.Index
	idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
	for _, arch := range []string{"amd64", "arm64"} {
		umociImage(t, e, layout, arch, arch)
		testenv.Skopeo(t, append(append([]string{"copy", "--quiet"}, tls...), "oci:"+layout+":"+arch, "docker://"+b.repo+":"+arch)...)
		raw := testenv.Skopeo(t, append(append([]string{"inspect", "--raw"}, src...), "docker://"+b.repo+":"+arch)...)
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if arch == "amd64" {
			b.amd64 = m
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch},
		})
	}
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	body, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	b.index = digest.FromBytes(body)
	client, err := reg.Client()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, reg.URL()+"/v2/base/manifests/multi", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	if reg.User != "" {
		req.SetBasicAuth(reg.User, reg.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT index: %s", resp.Status)
	}
	for _, l := range b.amd64.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Fatalf("base layer %s is %s; the test wants gzip layers", l.Digest, l.MediaType)
		}
	}
	return b
}

// run runs the nixpush binary the Nix functions use.
func (e env) run(t *testing.T, extraEnv []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.nixpush, "bin", "nixpush"), args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("nixpush %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String() + stderr.String(), nil
}

// lock runs nixpush lock and writes its output to a file, returning the
// file and the lock.
func (e env) lock(t *testing.T, extraEnv []string, args ...string) (string, map[string]string) {
	t.Helper()
	out, err := e.run(t, extraEnv, append([]string{"lock"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]string
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("nixpush lock printed %q: %v", out, err)
	}
	f := filepath.Join(t.TempDir(), "base.lock.json")
	writeFileMode(t, f, out, 0o644)
	return f, l
}
