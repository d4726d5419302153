package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// startInProcess starts an in-process registry for tests that must run on
// any machine.
var startInProcess = testenv.StartInProcessRegistry

// wide describes an image of n one-file layers from a fixture store below
// a temporary root (no Nix needed), built as a nix: reference builds it.
func wide(t *testing.T, n int) *transport.Built {
	t.Helper()
	root := t.TempDir()
	var ls []transporttest.Layer
	for i := range n {
		p := fixturePath(t, root, fmt.Sprintf("%032d-layer%d", i, i), map[string]string{"data": fmt.Sprintf("layer %d\n", i)})
		ls = append(ls, transporttest.Layer{Paths: []layers.Path{p}})
	}
	img := transporttest.Describe(t, "wide", ocispec.ImageConfig{Cmd: []string{"/bin/true"}}, ls, layers.WithRoot(root))
	built, err := transport.Build(img, layers.WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	return built
}

type requestCounts struct {
	total, blobHeads, blobWrites, manifestHeads, manifestPuts, pings int
}

func count(reqs []testenv.Request) requestCounts {
	var c requestCounts
	for _, q := range reqs {
		c.total++
		switch {
		case q.Path == "/v2/":
			c.pings++
		case q.Method == http.MethodHead && strings.Contains(q.Path, "/blobs/"):
			c.blobHeads++
		case q.IsBlobWrite():
			c.blobWrites++
		case q.Method == http.MethodHead && strings.Contains(q.Path, "/manifests/"):
			c.manifestHeads++
		case q.IsManifestWrite():
			c.manifestPuts++
		}
	}
	return c
}

// TestWarmPush: a first push of a 100-layer image checks each blob once;
// a re-push, from a fresh runner, asks for the manifest and stops there
// (at most 3 requests, whatever the number of layers); a new tag of the
// unchanged image checks no blob either; a tag naming another image is
// moved; every request says it is nixpush's.
func TestWarmPush(t *testing.T) {
	reg := startInProcess(t)
	built := wide(t, 100)
	push := func(t *testing.T, dests ...string) *registry.Report {
		t.Helper()
		for i, d := range dests {
			if !strings.Contains(d, "/") {
				dests[i] = reg.Host + "/" + d
			}
		}
		rep, err := registry.Push(context.Background(), []registry.Image{{Source: "wide.json", Built: built, Destinations: dests}},
			registry.WithTLSVerify(false), registry.WithUserAgent("nixpush/test"))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Images[0].Digest != built.ManifestDigest {
			t.Fatalf("pushed %s, want %s", rep.Images[0].Digest, built.ManifestDigest)
		}
		return rep
	}
	blobs := len(built.Blobs())
	tests := []struct {
		name  string
		dests []string
		check func(t *testing.T, c requestCounts, rep *registry.Report)
	}{
		{"first push", []string{"wide:v1"}, func(t *testing.T, c requestCounts, rep *registry.Report) {
			// Each missing blob is checked once (PutBlob's HEAD), then
			// uploaded; the manifest questions come first.
			if c.blobHeads != blobs || rep.Totals.Uploaded.Blobs != blobs || c.manifestPuts != 1 || c.manifestHeads != 2 {
				t.Errorf("%+v, %+v; want %d blob HEADs and uploads, 2 manifest HEADs and a PUT", c, rep.Totals, blobs)
			}
		}},
		{"re-push", []string{"wide:v1"}, func(t *testing.T, c requestCounts, rep *registry.Report) {
			if c.total > 3 || c.blobHeads != 0 || c.manifestPuts != 0 || rep.Totals.Unchanged != 1 {
				t.Errorf("%+v, %+v; want at most 3 requests, no blob checked, nothing written", c, rep.Totals)
			}
		}},
		{"new tag", []string{"wide:v2"}, func(t *testing.T, c requestCounts, rep *registry.Report) {
			// The tag is unknown, the manifest is there: only the tag is written.
			if c.blobHeads != 0 || c.blobWrites != 0 || c.manifestHeads != 2 || c.manifestPuts != 1 {
				t.Errorf("%+v; want 2 manifest HEADs, 1 PUT and no blob checked", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mark := reg.Mark()
			rep := push(t, tc.dests...)
			c := count(reg.Requests(mark))
			t.Logf("%d requests: %+v", c.total, c)
			tc.check(t, c, rep)
			for _, q := range reg.Requests(mark) {
				if !strings.HasPrefix(q.UserAgent, "nixpush/test containers/") {
					t.Errorf("%s: User-Agent %q, want nixpush/test and containers/image's", q, q.UserAgent)
				}
			}
		})
	}

	t.Run("tag moved", func(t *testing.T) {
		other := wide(t, 1)
		if _, err := registry.Push(context.Background(), []registry.Image{{Source: "other.json", Built: other, Destinations: []string{reg.Host + "/wide:v3"}}},
			registry.WithTLSVerify(false)); err != nil {
			t.Fatal(err)
		}
		mark := reg.Mark()
		rep := push(t, reg.Host+"/wide:v3")
		if c := count(reg.Requests(mark)); c.blobHeads != 0 || c.manifestPuts != 1 || rep.Totals.Manifests != 1 {
			t.Errorf("%+v, %+v; want the tag written, no blob checked", c, rep.Totals)
		}
	})
}

// TestWarmRelease: a re-run of a 20-image release, each image to its own
// repository (bench/release.sh's shape), from a fresh runner, makes at most
// 3 requests per repository and checks no blob.
func TestWarmRelease(t *testing.T) {
	reg := startInProcess(t)
	imgs, _ := fakeFamily(t, 20)
	var in []registry.Image
	for i, b := range imgs {
		in = append(in, registry.Image{Source: fmt.Sprintf("app%d.json", i), Built: b, Destinations: []string{fmt.Sprintf("%s/app%d:v1", reg.Host, i)}})
	}
	if _, err := registry.Push(context.Background(), in, registry.WithTLSVerify(false)); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	rep, err := registry.Push(context.Background(), in, registry.WithTLSVerify(false))
	if err != nil {
		t.Fatal(err)
	}
	perRepo := map[string]int{}
	for _, q := range reg.Requests(mark) {
		if strings.Contains(q.Path, "/blobs/") || q.Method != http.MethodHead && q.Path != "/v2/" {
			t.Errorf("re-run: %s", q)
		}
		repo, _, _ := strings.Cut(strings.TrimPrefix(q.Path, "/v2/"), "/manifests/")
		perRepo[repo]++
	}
	// Each GET /v2/ goes with the HEAD of its client: count pairs.
	pings := perRepo[""]
	delete(perRepo, "")
	if len(perRepo) != len(imgs) || pings != len(imgs) {
		t.Errorf("re-run asked %d repositories, %d GET /v2/; want %d of each", len(perRepo), pings, len(imgs))
	}
	for repo, n := range perRepo {
		if n+1 > 3 {
			t.Errorf("%s: %d requests, want at most 3", repo, n+1)
		}
	}
	if rep.Totals.Unchanged != len(imgs) || rep.Totals.Manifests != 0 {
		t.Errorf("totals %+v", rep.Totals)
	}
}
