package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestTransientFaults pushes through a proxy that drops connections in
// the middle of blobs, answers 503 and 429 with Retry-After: the run
// succeeds, each blob is stored once, and every image is complete.
func TestTransientFaults(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	const n = 4
	f := newFamily(t, n, 200_000) // app layers big enough to cut in the middle
	var imgs []registry.Image
	for i, p := range f.paths {
		imgs = append(imgs, registry.Image{Source: p, Destinations: []string{
			fmt.Sprintf("docker://%s/faulty/a:v%d", proxy.Host, i),
			fmt.Sprintf("docker://%s/faulty/b:v%d", proxy.Host, i),
		}})
	}
	rules := []testenv.FaultRule{
		{Method: http.MethodPatch, PathContains: "/blobs/uploads/", Times: 3, Kind: testenv.Drop, AfterBytes: 64 << 10},
		{Method: http.MethodPatch, PathContains: "/blobs/uploads/", Times: 1, Kind: testenv.Unavailable},
		{Method: http.MethodHead, PathContains: "/blobs/", Times: 2, Kind: testenv.Unavailable},
		{Method: http.MethodHead, PathContains: "/blobs/", Times: 1, Kind: testenv.TooManyRequests},
		{Method: http.MethodPost, PathContains: "/blobs/uploads/", Times: 1, Kind: testenv.Unavailable},
		{Method: http.MethodPut, PathContains: "/manifests/", Times: 1, Kind: testenv.TooManyRequests},
		{Method: http.MethodPut, PathContains: "/manifests/", Times: 1, Kind: testenv.Unavailable},
	}
	want := 0
	for _, r := range rules {
		proxy.Fail(r)
		want += r.Times
	}
	var progress bytes.Buffer
	mark := reg.Mark()
	start := time.Now()
	rep, err := registry.Push(context.Background(), imgs, stateless(t),
		registry.WithRetry(6, 10*time.Millisecond), registry.WithProgress(&progress, false, time.Hour))
	el := time.Since(start)
	if err != nil {
		t.Fatalf("push through transient faults: %v\n%s", err, progress.String())
	}
	if got := proxy.Faults(); got != want {
		t.Errorf("%d faults injected, want %d", got, want)
	}
	// containers/image waits out a 429 on a HEAD as Retry-After (1s) says.
	if el < time.Second {
		t.Errorf("run took %s: Retry-After: 1 was not honoured", el)
	}
	t.Logf("%s, %+v; retries:\n%s", el, rep.Totals, grep(progress.String(), "retrying"))
	if !strings.Contains(progress.String(), "retrying") {
		t.Errorf("no retry reported:\n%s", progress.String())
	}
	ops := countOps(t, reg.Requests(mark))
	unique := 2 + 2*n
	if len(ops.uploads) != unique {
		t.Errorf("%d blobs stored, want %d", len(ops.uploads), unique)
	}
	for d, c := range ops.uploads {
		if c != 1 {
			t.Errorf("blob %s stored %d times", d, c)
		}
	}
	for i := range n {
		for _, r := range []string{"a", "b"} {
			if got := pullAll(t, fmt.Sprintf("%s/faulty/%s:v%d", reg.Host, r, i)); got != f.builts[i].ManifestDigest {
				t.Errorf("faulty/%s:v%d: %s, want %s", r, i, got, f.builts[i].ManifestDigest)
			}
		}
	}
}

// TestPermanentFaults: a repository whose uploads always fail, with and
// without --keep-going. The error names the blob and repository; no
// manifest that was written references a missing blob.
func TestPermanentFaults(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFamily(t, 3, 0)
	for _, keepGoing := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep-going=%v", keepGoing), func(t *testing.T) {
			proxy := testenv.StartFaultProxy(t, reg.Host)
			proxy.Fail(testenv.FaultRule{Method: http.MethodPatch, PathContains: "/broken/", Times: -1, Kind: testenv.Unavailable})
			tag := fmt.Sprintf("kg-%v", keepGoing)
			imgs := []registry.Image{
				{Source: f.paths[0], Destinations: []string{proxy.Host + "/fine/zero:" + tag}},
				{Source: f.paths[1], Destinations: []string{proxy.Host + "/broken/one:" + tag, proxy.Host + "/fine/one:" + tag}},
				{Source: f.paths[2], Destinations: []string{proxy.Host + "/fine/two:" + tag}},
			}
			mark := reg.Mark()
			rep, err := registry.Push(context.Background(), imgs, stateless(t),
				registry.WithRetry(2, 10*time.Millisecond), registry.WithKeepGoing(keepGoing))
			if err == nil || !errors.Is(err, registry.ErrIncomplete) {
				t.Fatalf("err = %v, want ErrIncomplete", err)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), "broken/one") || !strings.Contains(err.Error(), "gave up after 3 tries") {
				t.Errorf("error does not name the repository and the retries: %v", err)
			}
			if rep.Images[1].Status != registry.StatusFailed || rep.Images[1].Destinations[0].Status != registry.StatusFailed {
				t.Errorf("image 1: %+v", rep.Images[1])
			}
			if keepGoing && (rep.Images[0].Status != registry.StatusPushed || rep.Images[2].Status != registry.StatusPushed) {
				t.Errorf("with --keep-going, the other images were not pushed: %+v", rep.Images)
			}
			for _, q := range reg.Requests(mark) {
				if q.IsManifestWrite() && strings.Contains(q.Path, "/broken/") {
					t.Errorf("a manifest was written to the broken repository: %s", q)
				}
			}
			// Every manifest written is complete: skopeo reads each blob.
			for i, ir := range rep.Images {
				for _, d := range ir.Destinations {
					if d.Status == registry.StatusPushed {
						ref := strings.Replace(d.Reference, proxy.Host, reg.Host, 1)
						if got := pullAll(t, ref); got != f.builts[i].ManifestDigest {
							t.Errorf("%s: %s", ref, got)
						}
					}
				}
			}
		})
	}
}

// TestMismatchFailsFast: a description whose layer digest no longer
// matches the store fails at once, without retries, naming the layer; the
// registry gets no blob under either digest and no manifest.
func TestMismatchFailsFast(t *testing.T) {
	reg := testenv.StartRegistry(t)
	p := transporttest.AddStorePath(t, "release-mismatch", map[string]transporttest.File{
		"data": {Data: strings.Repeat("data\n", 5000)},
	})
	img := transporttest.Describe(t, "mismatch", ociConfig(), []transporttest.Layer{{Paths: []layers.Path{p}}})
	real := img.Layers[0].Digest
	bad := digest.FromString("not the layer")
	img.Layers[0].Digest, img.Layers[0].DiffID = bad, bad
	path := writeDesc(t, img)
	var progress bytes.Buffer
	mark := reg.Mark()
	_, err := registry.Push(context.Background(), []registry.Image{{Source: "nix:" + path, Destinations: []string{reg.Host + "/mismatch:v1"}}},
		stateless(t), registry.WithRetry(5, 10*time.Millisecond), registry.WithProgress(&progress, false, time.Hour))
	var le *description.LayerError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "does not match its description") {
		t.Fatalf("err = %v, want a LayerError", err)
	}
	if strings.Contains(progress.String(), "retrying") {
		t.Errorf("a mismatch was retried:\n%s", progress.String())
	}
	// The image's config is a valid blob and may be stored before the layer
	// fails; the layer must not be, under either digest.
	for _, q := range reg.Requests(mark) {
		layerWrite := q.Method != http.MethodHead && (strings.Contains(q.Path, real.Encoded()) || strings.Contains(q.Path, bad.Encoded()))
		if q.IsManifestWrite() || layerWrite {
			t.Errorf("unexpected write: %s", q)
		}
	}
}

func writeDesc(t *testing.T, img *description.Image) string {
	t.Helper()
	return transporttest.Write(t, img)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAuthFaultsFailFast: 401 and 403 answers end the run at once, with a
// message saying what to check, and are not retried.
func TestAuthFaultsFailFast(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFamily(t, 1, 0)
	tests := []struct {
		kind testenv.FaultKind
		want error
	}{
		{testenv.Unauthorized, registry.ErrUnauthorized},
		{testenv.Forbidden, registry.ErrDenied},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			proxy := testenv.StartFaultProxy(t, reg.Host)
			proxy.Fail(testenv.FaultRule{Method: http.MethodHead, PathContains: "/blobs/", Times: -1, Kind: tc.kind})
			var progress bytes.Buffer
			_, err := registry.Push(context.Background(),
				[]registry.Image{{Source: f.paths[0], Destinations: []string{proxy.Host + "/auth/app:v1"}}},
				stateless(t), registry.WithRetry(5, 50*time.Millisecond), registry.WithProgress(&progress, false, time.Hour))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
			if strings.Contains(progress.String(), "retrying") {
				t.Errorf("retried:\n%s", progress.String())
			}
			for _, q := range proxy.Requests() {
				if q.Method != http.MethodHead && q.Method != http.MethodGet {
					t.Errorf("unexpected request after a refusal: %s", q)
				}
			}
		})
	}
}

// TestHungRequestTimesOut: a registry that never answers one check and
// stalls one upload gets those tries cancelled after the timeout and
// retried; the run succeeds.
func TestHungRequestTimesOut(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	proxy.Fail(testenv.FaultRule{Method: http.MethodHead, PathContains: "/blobs/", Times: 1, Kind: testenv.Hang})
	proxy.Fail(testenv.FaultRule{Method: http.MethodPatch, Times: 1, Kind: testenv.Hang})
	host := proxy.Host
	f := newFamily(t, 1, 0)
	var progress bytes.Buffer
	rep, err := registry.Push(context.Background(),
		[]registry.Image{{Source: f.paths[0], Destinations: []string{host + "/hung/app:v1"}}},
		stateless(t), registry.WithTimeout(300*time.Millisecond), registry.WithRetry(3, 10*time.Millisecond),
		registry.WithProgress(&progress, false, time.Hour))
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if n := strings.Count(progress.String(), "no progress within the timeout (300ms)"); n != 2 {
		t.Errorf("%d timeouts reported, want 2:\n%s", n, progress.String())
	}
	if rep.Images[0].Status != registry.StatusPushed {
		t.Errorf("report %+v", rep.Images[0])
	}
	if got := pullAll(t, reg.Host+"/hung/app:v1"); got != f.builts[0].ManifestDigest {
		t.Errorf("hung/app:v1: %s", got)
	}
}
