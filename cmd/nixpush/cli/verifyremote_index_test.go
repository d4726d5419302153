package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// storeIndex writes an index description of imgs, each added to the
// store as an image description file, and returns its file and digest.
func storeIndex(t *testing.T, name string, imgs ...*description.Image) (string, *transport.BuiltIndex) {
	t.Helper()
	idx := &description.Index{Version: description.Version, Name: "verify-index"}
	for _, img := range imgs {
		path, err := testenv.Nix(t, "nix-store", "--add", transporttest.Write(t, img))
		if err != nil {
			t.Fatal(err)
		}
		m, err := description.ManifestFor(strings.TrimSpace(path), img)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, m)
	}
	b, err := description.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".json")
	writeFile(t, file, string(b))
	ref, err := transport.NewReference(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, ref.Index()
}

// TestVerifyIndexAgainstRegistry pushes two indexes that share their
// arm64 image and differ in their amd64 one, and checks that verify of
// an index says identical for the tag that holds it, fetching no blob,
// and for the other names the amd64 image, its changed layer with its
// store path and its changed config field, never the shared arm64 image;
// against a tag holding one image it says the registry serves no index.
func TestVerifyIndexAgainstRegistry(t *testing.T) {
	testenv.RequireNix(t)
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	descA, _, a, b, appA, _ := twoBuilds(t)
	arm := *a.Image
	arm.Architecture, arm.Variant = "arm64", "v8"
	idxA, builtA := storeIndex(t, "a", a.Image, &arm)
	idxB, _ := storeIndex(t, "b", b.Image, &arm)
	for _, p := range []struct{ src, tag string }{{idxA, "a"}, {idxB, "b"}, {descA, "single"}} {
		if r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+p.src, "docker://"+reg.Host+"/verify-index:"+p.tag); r.err != nil {
			t.Fatalf("copy: %v\n%s", r.err, r.stderr)
		}
	}

	mark := reg.Mark()
	r := run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+idxA, "docker://"+reg.Host+"/verify-index:a")
	if r.err != nil || !strings.HasPrefix(r.stdout, "identical: ") || !strings.Contains(r.stdout, builtA.Digest.String()) {
		t.Fatalf("verify of the pushed index: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	for _, q := range reg.Requests(mark) {
		if strings.Contains(q.Path, "/blobs/") {
			t.Errorf("verify of an identical index fetched a blob: %s", q)
		}
	}

	r = run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+idxA, "docker://"+reg.Host+"/verify-index:b")
	if r.err == nil {
		t.Fatalf("verify against another index passed:\n%s", r.stdout)
	}
	for _, want := range []string{
		"manifests[0] (linux/amd64): description " + a.ManifestDigest.String() + ", registry " + b.ManifestDigest.String(),
		"manifests[0] (linux/amd64).layers[1]: description " + a.Image.Layers[1].Digest.String(),
		"holds " + appA.Path,
		`manifests[0] (linux/amd64).config.Env[1]: description "MODE=release", registry "MODE=debug"`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "arm64") || strings.Contains(r.stdout, "layers[0]") {
		t.Errorf("the shared arm64 image or the shared layer is reported:\n%s", r.stdout)
	}

	r = run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+idxA, "docker://"+reg.Host+"/verify-index:single")
	if r.err == nil || !strings.Contains(r.stdout, "the registry serves one image; the description builds an index") {
		t.Errorf("verify of an index against one image: %v\n%s", r.err, r.stdout)
	}
}
