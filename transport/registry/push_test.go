package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/registry"
)

// TestReleaseSharedLayers pushes 20 images sharing two base layers, each
// to 3 repositories of one registry: every unique blob is uploaded once,
// mounted into the other repositories, and a second run uploads nothing.
func TestReleaseSharedLayers(t *testing.T) {
	reg := testenv.StartRegistry(t)
	const n = 20
	repos := []string{"team-a/app", "team-b/app", "mirror/app"}
	f := newFamily(t, n, 0)
	var imgs []registry.Image
	for i, p := range f.paths {
		var dests []string
		for _, r := range repos {
			dests = append(dests, fmt.Sprintf("docker://%s/%s:img%d", reg.Host, r, i))
		}
		if i == 0 {
			dests = append(dests, reg.Host+"/"+repos[0]+":latest") // a second tag, no docker://
		}
		imgs = append(imgs, registry.Image{Source: p, Destinations: dests})
	}
	unique := 2 + 2*n // bases, then an app layer and a config per image
	opts := []registry.Option{stateless(t), registry.WithRetry(2, 10*time.Millisecond)}

	var progress bytes.Buffer
	mark := reg.Mark()
	rep, err := registry.Push(context.Background(), imgs, append(opts, registry.WithProgress(&progress, false, 50*time.Millisecond))...)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, progress.String())
	}
	ops := countOps(t, reg.Requests(mark))
	// Each new client of containers/image asks GET /v2/ once: one per
	// question for a manifest (a HEAD per tag, then one by digest per
	// image and repository), one per repository for its blobs, and one
	// per tag other than the one the repository's blob client was made
	// for (that tag's manifest is written through it).
	pings, manifestHeads := 0, 0
	for _, q := range reg.Requests(mark) {
		switch {
		case q.Path == "/v2/":
			pings++
		case q.Method == http.MethodHead && strings.Contains(q.Path, "/manifests/"):
			manifestHeads++
		}
	}
	tags, dests := n*len(repos)+1, n*len(repos)
	if want := tags + dests + len(repos) + (tags - len(repos)); pings != want {
		t.Errorf("%d GET /v2/, want %d", pings, want)
	}
	if manifestHeads != tags+dests {
		t.Errorf("%d manifest HEADs, want %d (each tag, then each image's digest in each repository)", manifestHeads, tags+dests)
	}
	t.Logf("first run: %.2fs, %d HEAD, %d uploads, %d mounts, %d upload sessions, %d manifests; %+v",
		rep.Seconds, ops.heads, len(ops.uploads), len(ops.mounts), ops.starts, ops.manifests, rep.Totals)
	if len(ops.uploads) != unique {
		t.Errorf("%d blobs uploaded, want each of the %d unique blobs", len(ops.uploads), unique)
	}
	for d, c := range ops.uploads {
		if c != 1 {
			t.Errorf("blob %s uploaded %d times, want once", d, c)
		}
	}
	// One check in the home; in each other repository, the two checks
	// containers/image makes before a mount (there, then the home).
	if want := unique + 2*unique*(len(repos)-1); ops.heads != want {
		t.Errorf("%d blob HEADs, want %d", ops.heads, want)
	}
	if ops.starts != unique {
		t.Errorf("%d upload sessions started, want %d", ops.starts, unique)
	}
	for d, c := range ops.mounts {
		if c != len(repos)-1 {
			t.Errorf("blob %s mounted %d times, want %d", d, c, len(repos)-1)
		}
	}
	if len(ops.mounts) != unique || ops.badMounts != 0 {
		t.Errorf("%d blobs mounted (%d without from), want %d", len(ops.mounts), ops.badMounts, unique)
	}
	if want := n*len(repos) + 1; ops.manifests != want || rep.Totals.Manifests != want {
		t.Errorf("%d manifests written (report %d), want %d", ops.manifests, rep.Totals.Manifests, want)
	}
	tot := rep.Totals
	if tot.Uploaded.Blobs != unique || tot.Mounted.Blobs != unique*(len(repos)-1) || tot.Skipped.Blobs != 0 || tot.Failed != 0 {
		t.Errorf("totals %+v", tot)
	}
	for i, ir := range rep.Images {
		if ir.Status != registry.StatusPushed || ir.Digest != f.builts[i].ManifestDigest || len(ir.Destinations) != len(imgs[i].Destinations) {
			t.Errorf("image %d report %+v", i, ir)
		}
	}
	if !strings.Contains(progress.String(), " uploaded, ") || !strings.Contains(progress.String(), "manifests written (20 images)") {
		t.Errorf("no periodic progress lines:\n%s", progress.String())
	}
	if !strings.Contains(progress.String(), "pushed "+reg.Host+"/mirror/app:img19@"+f.builts[19].ManifestDigest.String()) {
		t.Errorf("progress does not name the pushed tags:\n%s", progress.String())
	}

	// Every repository serves complete images under every tag.
	for _, ref := range []string{repos[0] + ":latest", repos[1] + ":img7", repos[2] + ":img19"} {
		want := f.builts[0].ManifestDigest
		if !strings.HasSuffix(ref, "latest") {
			var i int
			fmt.Sscanf(ref[strings.LastIndex(ref, "img")+3:], "%d", &i)
			want = f.builts[i].ManifestDigest
		}
		if got := pullAll(t, reg.Host+"/"+ref); got != want {
			t.Errorf("%s: digest %s, want %s", ref, got, want)
		}
	}

	// A second run, on a fresh runner: each tag names its manifest, so no
	// blob is checked and nothing is written; GET /v2/ and a HEAD per tag.
	mark = reg.Mark()
	rep, err = registry.Push(context.Background(), imgs, opts...)
	if err != nil {
		t.Fatalf("second push: %v", err)
	}
	ops = countOps(t, reg.Requests(mark))
	t.Logf("second run: %.2fs, %d HEAD, %d blob writes, %d manifests; %+v", rep.Seconds, ops.heads, ops.writes, ops.manifests, rep.Totals)
	if ops.writes != 0 || rep.Totals.Uploaded.Blobs != 0 || rep.Totals.Mounted.Blobs != 0 {
		t.Errorf("second run wrote %d blobs (report %+v), want none", ops.writes, rep.Totals)
	}
	if ops.manifests != 0 || rep.Totals.Unchanged != n*len(repos)+1 {
		t.Errorf("second run wrote %d manifests, %d tags unchanged; want 0 and %d", ops.manifests, rep.Totals.Unchanged, n*len(repos)+1)
	}
	if ops.heads != 0 || rep.Totals.Skipped.Blobs != 0 {
		t.Errorf("second run: %d blob HEADs, %d skipped, want none", ops.heads, rep.Totals.Skipped.Blobs)
	}
	if reqs := reg.Requests(mark); len(reqs) != 2*tags {
		t.Errorf("second run: %d requests, want %d (GET /v2/ and a manifest HEAD per tag)", len(reqs), 2*tags)
	}
}

// TestTwoRegistries: each registry gets each unique blob uploaded once;
// nothing is mounted across registries.
func TestTwoRegistries(t *testing.T) {
	regs := []*testenv.Registry{testenv.StartRegistry(t), testenv.StartRegistry(t)}
	const n = 3
	f := newFamily(t, n, 0)
	var imgs []registry.Image
	for i, p := range f.paths {
		imgs = append(imgs, registry.Image{Source: p, Destinations: []string{
			fmt.Sprintf("%s/one/app:v%d", regs[0].Host, i),
			fmt.Sprintf("%s/two/app:v%d", regs[1].Host, i),
			fmt.Sprintf("%s/three/app:v%d", regs[1].Host, i),
		}})
	}
	marks := []int{regs[0].Mark(), regs[1].Mark()}
	rep, err := registry.Push(context.Background(), imgs, stateless(t), registry.WithParallel(4))
	if err != nil {
		t.Fatal(err)
	}
	unique := 2 + 2*n
	for i, reg := range regs {
		ops := countOps(t, reg.Requests(marks[i]))
		t.Logf("registry %d: %d HEAD, %d uploads, %d mounts", i, ops.heads, len(ops.uploads), len(ops.mounts))
		if len(ops.uploads) != unique {
			t.Errorf("registry %d: %d blobs uploaded, want %d", i, len(ops.uploads), unique)
		}
		for d, c := range ops.uploads {
			if c != 1 {
				t.Errorf("registry %d: blob %s uploaded %d times", i, d, c)
			}
		}
	}
	if tot := rep.Totals; tot.Uploaded.Blobs != 2*unique || tot.Mounted.Blobs != unique || tot.Manifests != 3*n {
		t.Errorf("totals %+v", tot)
	}
	if got := pullAll(t, regs[1].Host+"/three/app:v2"); got != f.builts[2].ManifestDigest {
		t.Errorf("three/app:v2: %s", got)
	}
}
