package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// twoBuilds describes two builds of one image: the same base layer, an
// app layer whose store path differs, and a different Env.
func twoBuilds(t *testing.T) (descA, descB string, a, b *transport.Built, appA, appB layers.Path) {
	t.Helper()
	base := transporttest.AddStorePath(t, "verify-base", map[string]transporttest.File{"lib/base": {Data: "base library\n"}})
	appA = transporttest.AddStorePath(t, "verify-app-1.0", map[string]transporttest.File{"bin/app": {Data: "#!/bin/sh\necho 1.0\n", Exec: true}})
	appB = transporttest.AddStorePath(t, "verify-app-1.1", map[string]transporttest.File{"bin/app": {Data: "#!/bin/sh\necho 1.1\n", Exec: true}})
	describe := func(app layers.Path, env string) (string, *transport.Built) {
		img := transporttest.Describe(t, "verify", ocispec.ImageConfig{Env: []string{"PATH=/bin", env}, Cmd: []string{app.Path + "/bin/app"}},
			[]transporttest.Layer{{Paths: []layers.Path{base}}, {Paths: []layers.Path{app}}})
		built, err := transport.Build(img)
		if err != nil {
			t.Fatal(err)
		}
		return transporttest.Write(t, img), built
	}
	descA, a = describe(appA, "MODE=release")
	descB, b = describe(appB, "MODE=debug")
	return descA, descB, a, b, appA, appB
}

// TestVerifyAgainstRegistry pushes two builds and checks that verify says
// identical for the build a tag holds, fetching nothing but its manifest,
// and names the changed layer, its store path and the changed config field
// for the other.
func TestVerifyAgainstRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	descA, descB, a, b, appA, _ := twoBuilds(t)
	for _, p := range []struct{ desc, tag string }{{descA, "a"}, {descB, "b"}} {
		if r := run(t, bin, nil, "copy", "-q", "--dest-tls-verify=false", "nix:"+p.desc, "docker://"+reg.Host+"/verify:"+p.tag); r.err != nil {
			t.Fatalf("copy: %v\n%s", r.err, r.stderr)
		}
	}

	t.Run("identical", func(t *testing.T) {
		for _, ref := range []string{reg.Host + "/verify:a", reg.Host + "/verify@" + a.ManifestDigest.String()} {
			mark := reg.Mark()
			r := run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+descA, "docker://"+ref)
			if r.err != nil {
				t.Fatalf("verify %s: %v\n%s%s", ref, r.err, r.stdout, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "identical: ") || !strings.Contains(r.stdout, a.ManifestDigest.String()) {
				t.Errorf("verify %s printed:\n%s", ref, r.stdout)
			}
			for _, q := range reg.Requests(mark) {
				if strings.Contains(q.Path, "/blobs/") {
					t.Errorf("verify of an identical manifest fetched a blob: %s", q)
				}
			}
		}
	})

	t.Run("another build", func(t *testing.T) {
		mark := reg.Mark()
		r := run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+descA, "docker://"+reg.Host+"/verify:b")
		if r.err == nil {
			t.Fatalf("verify against another build passed:\n%s", r.stdout)
		}
		for _, want := range []string{
			"differs: ", b.ManifestDigest.String(), a.ManifestDigest.String(),
			"layers[1]: description " + a.Image.Layers[1].Digest.String(),
			"registry " + b.Image.Layers[1].Digest.String(),
			"holds " + appA.Path,
			`config.Env[1]: description "MODE=release", registry "MODE=debug"`,
			"config.Cmd[0]: ",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "layers[0]") {
			t.Errorf("the shared base layer is reported:\n%s", r.stdout)
		}
		// Only the config blob is fetched, never a layer.
		var blobs []string
		for _, q := range reg.Requests(mark) {
			if strings.Contains(q.Path, "/blobs/") {
				blobs = append(blobs, q.Path)
			}
		}
		if len(blobs) != 1 || !strings.HasSuffix(blobs[0], b.ConfigDigest.String()) {
			t.Errorf("blobs fetched: %v; want only the config %s", blobs, b.ConfigDigest)
		}
	})

	t.Run("json", func(t *testing.T) {
		r := run(t, bin, nil, "verify", "--json", "--tls-verify=false", "nix:"+descA, "docker://"+reg.Host+"/verify:b")
		if r.err == nil {
			t.Fatal("verify --json against another build passed")
		}
		var res struct {
			Identical   bool
			Differences []struct {
				Field string
				Paths []string
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("verify --json: %v\n%s", err, r.stdout)
		}
		found := false
		for _, d := range res.Differences {
			found = found || (d.Field == "layers[1]" && len(d.Paths) == 1 && d.Paths[0] == appA.Path)
		}
		if res.Identical || !found {
			t.Errorf("verify --json: %+v", res)
		}
	})

	t.Run("no registry host", func(t *testing.T) {
		r := run(t, bin, nil, "verify", "nix:"+descA, "docker://verify:a")
		if r.err == nil || !strings.Contains(r.stderr, "no registry host") {
			t.Errorf("verify of docker://verify:a: %v\n%s", r.err, r.stderr)
		}
	})

	t.Run("missing tag", func(t *testing.T) {
		r := run(t, bin, nil, "verify", "--tls-verify=false", "nix:"+descA, "docker://"+reg.Host+"/verify:nope")
		if r.err == nil || !strings.Contains(r.stderr, "verify:nope") {
			t.Errorf("verify of a missing tag: %v\n%s", r.err, r.stderr)
		}
	})
}
