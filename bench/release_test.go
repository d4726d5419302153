package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// storePath writes nFiles files of about total bytes in all into a
// directory called name, pseudo-random from seed (one 8 MiB block read at
// varying offsets, so memory stays small), adds it to the Nix store and
// returns it as a layer path. The store path is deleted when tb ends.
func storePath(tb testing.TB, name string, seed byte, nFiles int, total int64) layers.Path {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), name)
	block := randomBlock([32]byte{seed, 0xbe})
	size := total / int64(nFiles)
	for f := 0; f < nFiles; f++ {
		writeFixtureFile(tb, filepath.Join(dir, fmt.Sprintf("d%02d", f%16), fmt.Sprintf("file-%05d", f)), block, f, size)
	}
	return storeInfo(tb, addStorePath(tb, dir))
}

// storeInfo returns store path sp as a layer path, with its NAR hash and
// size from the Nix store.
func storeInfo(tb testing.TB, sp string) layers.Path {
	tb.Helper()
	q := func(flag string) string {
		out, err := exec.Command(testenv.Tool(tb, "nix-store"), "-q", flag, sp).Output()
		if err != nil {
			tb.Fatalf("nix-store -q %s %s: %v", flag, sp, exitErr(err))
		}
		return strings.TrimSpace(string(out))
	}
	narSize, err := strconv.ParseUint(q("--size"), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return layers.Path{Path: sp, NarHash: q("--hash"), NarSize: narSize}
}

// describedLayer hashes a one-store-path layer as buildImage would.
func describedLayer(tb testing.TB, p layers.Path) description.Layer {
	tb.Helper()
	spec := layers.Spec{Paths: []layers.Path{p}, MTime: layers.DefaultMTime}
	d, size, err := layers.Digest(context.Background(), spec)
	if err != nil {
		tb.Fatalf("layer of %s: %v", p.Path, err)
	}
	return description.Layer{
		Spec: spec, Digest: d, DiffID: d, Size: size,
		MediaType: description.MediaTypeLayer,
		History:   description.History{CreatedBy: "bench layer " + filepath.Base(p.Path)},
	}
}

// writeDescription writes an image description of ls and returns its path.
func writeDescription(tb testing.TB, name string, ls []description.Layer) string {
	tb.Helper()
	img := &description.Image{
		Version: description.Version, Name: name, Tag: "v1",
		Architecture: "amd64", OS: "linux",
		Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Config:  ocispec.ImageConfig{Entrypoint: []string{"/bin/" + name}},
		Layers:  ls,
	}
	if err := img.Validate(); err != nil {
		tb.Fatalf("description of %s: %v", name, err)
	}
	b, err := description.Marshal(img)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// requirePushCommand skips when the nixpush binary has no push command.
func requirePushCommand(tb testing.TB) {
	tb.Helper()
	if out, err := exec.Command(nixpushBin(tb), "push", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--plan") {
		tb.Skipf("this nixpush has no push --plan command: %v\n%s", err, out)
	}
}

// benchRelease pushes a release of nImages images, each to its own
// repository, with one `nixpush push`, against pushing them one by one
// with `nixpush copy` and against curl uploading only the release's unique
// blobs once. Every image has the same four base layers (half of total)
// and one layer of its own (the other half, split among the images).
//
// The push and curl's upload are timed runs times each, taking turns at
// going first, each into a fresh registry after a sync: on a small shared
// machine one run moves by tenths of a second, so the figure is the median
// of the runs' ratios (resultRuns).
func benchRelease(tb testing.TB, nImages int, total int64, runs int) {
	tb.Helper()
	testenv.RequireNix(tb)
	requirePushCommand(tb)
	files := func(n int64) int { return int(max(1, n>>20)) } // about 1 MiB files
	var base []description.Layer
	for i := 0; i < 4; i++ {
		p := storePath(tb, fmt.Sprintf("nixpush-bench-base-%d", i), byte(i), files(total/8), total/8)
		base = append(base, describedLayer(tb, p))
	}
	appBytes := total / 2 / int64(nImages)
	descs := make([]string, nImages)
	for i := range descs {
		name := fmt.Sprintf("app-%02d", i)
		p := storePath(tb, "nixpush-bench-"+name, byte(100+i), files(appBytes), appBytes)
		descs[i] = writeDescription(tb, name, append(append([]description.Layer{}, base...), describedLayer(tb, p)))
	}
	dir := tb.TempDir()
	// The baseline's input, not timed: every blob of the release, once.
	layout := filepath.Join(dir, "oci")
	for i, d := range descs {
		runNixpush(tb, "copy", "-q", "nix:"+d, fmt.Sprintf("oci:%s:app-%02d", layout, i))
	}
	blobs := layoutBlobs(tb, layout)
	var unique int64
	for _, f := range blobs {
		st, err := os.Stat(f)
		if err != nil {
			tb.Fatal(err)
		}
		unique += st.Size()
	}

	reportFile := filepath.Join(dir, "report.json")
	var release, curl usage // CPU summed over the runs, peak RSS
	var releaseWalls, curlWalls []time.Duration
	var releaseReg, curlReg time.Duration
	var requests string
	var warm []testenv.Request
	var warmWall time.Duration
	for run := 0; run < runs; run++ {
		regs := []*testenv.Registry{testenv.StartRegistry(tb), testenv.StartRegistry(tb)}
		planFile := writePlan(tb, dir, regs[0].Host, descs)
		var c, r usage
		sides := []func(){func() {
			reg1 := regs[1].CPUTime()
			c = curlUpload(tb, regs[1].Host, "release", blobs, registry.DefaultParallel)
			curlReg += regs[1].CPUTime() - reg1
		}, func() {
			reg0 := regs[0].CPUTime()
			r = runNixpush(tb, "push", "-q", "--dest-tls-verify=false", "--report", reportFile, "--plan", planFile)
			releaseReg += regs[0].CPUTime() - reg0
		}}
		if run%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			syscall.Sync() // untimed: no side pays for the other's writeback
			side()
		}
		release.cpu, release.rssMiB = release.cpu+r.cpu, max(release.rssMiB, r.rssMiB)
		curl.cpu = curl.cpu + c.cpu
		releaseWalls, curlWalls = append(releaseWalls, r.wall), append(curlWalls, c.wall)
		requests = fmt.Sprintf("nixpush %s; curl %s", methods(regs[0].Requests(0)), methods(regs[1].Requests(0)))
		if run == runs-1 {
			// A warm re-run, as a fresh CI runner does it: the registry
			// has everything, HOME and the blob-info cache are new.
			mark := regs[0].Mark()
			w := runNixpush(tb, "push", "-q", "--dest-tls-verify=false", "--plan", planFile)
			warm = regs[0].Requests(mark)
			warmWall = w.wall
		}
		stopRegistries(tb, regs)
	}

	// One by one, as written, then as a user who knows the first image's
	// repository holds the shared layers would.
	regs := []*testenv.Registry{testenv.StartRegistry(tb), testenv.StartRegistry(tb)}
	var oneByOne, mounting time.Duration
	for i, d := range descs {
		oneByOne += runNixpush(tb, "copy", "-q", "--dest-tls-verify=false", "nix:"+d, fmt.Sprintf("docker://%s/app-%02d:v1", regs[0].Host, i)).wall
		args := []string{"copy", "-q", "--dest-tls-verify=false", "nix:" + d, fmt.Sprintf("docker://%s/app-%02d:v1", regs[1].Host, i)}
		if i > 0 {
			args = append(args, "--mount-from", "app-00")
		}
		mounting += runNixpush(tb, args...).wall
	}
	stopRegistries(tb, regs)

	var report struct {
		Totals struct {
			Uploaded, Mounted, Skipped struct {
				Blobs int
				Bytes int64
			}
		}
	}
	if b, err := os.ReadFile(reportFile); err != nil {
		tb.Fatalf("reading the push report: %v", err)
	} else if err := json.Unmarshal(b, &report); err != nil {
		tb.Fatalf("push report: %v", err)
	}
	up := report.Totals.Uploaded
	size := fmt.Sprintf("%d images, %s unique in %d blobs, %s pushed in all", nImages, mib(unique), len(blobs),
		mib(int64(nImages)*(total/2+appBytes)))
	resultRuns(fmt.Sprintf("release-%d-images-vs-unique-bytes", nImages), releaseWalls, curlWalls,
		fmt.Sprintf("target <= 1.2; curl uploading each unique blob once, %d at once; %s; nixpush uploaded %d blobs (%s), mounted %d, peak RSS %.0f MiB; CPU per run: nixpush %.1f s + its registry %.1f s, curl %.1f s + its registry %.1f s",
			registry.DefaultParallel, size, up.Blobs, mib(up.Bytes), report.Totals.Mounted.Blobs, release.rssMiB,
			release.cpu.Seconds()/float64(runs), releaseReg.Seconds()/float64(runs), curl.cpu.Seconds()/float64(runs), curlReg.Seconds()/float64(runs)))
	fmt.Printf("release-%d-images-requests: %s\n", nImages, requests)
	perRepo := map[string]int{}
	for _, q := range warm {
		if repo, _, ok := strings.Cut(strings.TrimPrefix(q.Path, "/v2/"), "/"); ok {
			perRepo[repo]++
		}
	}
	// Each repository's client also pings /v2/, which names no repository.
	perRepoAll := float64(len(warm)) / float64(max(1, len(perRepo)))
	fmt.Printf("release-%d-images-warm-rerun: nixpush %d requests in %.3f s over %d repositories, %.1f per repository with its GET /v2/ (target <= 3): %s\n",
		nImages, len(warm), warmWall.Seconds(), len(perRepo), perRepoAll, methods(warm))
	if len(perRepo) != nImages || perRepoAll > 3 {
		tb.Errorf("a warm re-run of the release made %d requests to %d repositories, more than 3 per repository", len(warm), len(perRepo))
	}
	result(fmt.Sprintf("release-%d-images-vs-one-by-one", nImages), median(releaseWalls), oneByOne,
		fmt.Sprintf("nixpush copy of each image in turn; %s", size))
	result(fmt.Sprintf("release-%d-images-vs-one-by-one-mount-from", nImages), median(releaseWalls), mounting,
		fmt.Sprintf("nixpush copy of each image in turn, all but the first with --mount-from the first's repository; %s", size))
	if up.Bytes > unique {
		tb.Errorf("the release uploaded %d bytes, more than its %d unique bytes", up.Bytes, unique)
	}
}

// writePlan writes a plan pushing each of descs to host/app-NN:v1.
func writePlan(tb testing.TB, dir, host string, descs []string) string {
	tb.Helper()
	var plan struct {
		Images []map[string]any `json:"images"`
	}
	for i, d := range descs {
		plan.Images = append(plan.Images, map[string]any{
			"image":        d,
			"destinations": []string{fmt.Sprintf("docker://%s/app-%02d:v1", host, i)},
		})
	}
	b, err := json.Marshal(plan)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkRelease: a 20-image release (default 256 MiB of unique bytes;
// NIXPUSH_BENCH_RELEASE_BYTES changes it, bench/release.sh --full runs
// 1 GiB) pushed with nixpush push, against one `nixpush copy` per image
// and against curl uploading the unique blobs once, NIXPUSH_BENCH_RUNS
// (default 5) times each. Target: within 1.2× of the curl time.
func BenchmarkRelease(b *testing.B) {
	total := envInt("NIXPUSH_BENCH_RELEASE_BYTES", 256<<20)
	for i := 0; i < b.N; i++ {
		benchRelease(b, 20, total, int(envInt("NIXPUSH_BENCH_RUNS", 5)))
	}
}

// benchBigLayer pushes an image of one store path of size bytes with the
// nixpush binary to an empty registry, reporting its peak RSS and its time
// against curl uploading the same finished layer blob.
func benchBigLayer(tb testing.TB, size int64) {
	tb.Helper()
	testenv.RequireNix(tb)
	nFiles := int(max(1, size/(64<<20))) // 64 MiB files
	p := storePath(tb, "nixpush-bench-big", 0xb1, nFiles, size)
	desc := writeDescription(tb, "big", []description.Layer{describedLayer(tb, p)})
	regs := []*testenv.Registry{testenv.StartRegistry(tb), testenv.StartRegistry(tb)}
	syscall.Sync() // untimed: the fixture's writeback is not the push's
	reg0 := regs[0].CPUTime()
	u := runNixpush(tb, "copy", "-q", "--dest-tls-verify=false", "nix:"+desc, "docker://"+regs[0].Host+"/big:v1")
	reg0 = regs[0].CPUTime() - reg0

	layout := filepath.Join(tb.TempDir(), "oci")
	oci := runNixpush(tb, "copy", "-q", "nix:"+desc, "oci:"+layout+":big")
	syscall.Sync()
	reg1 := regs[1].CPUTime()
	curl := curlUpload(tb, regs[1].Host, "big", layoutBlobs(tb, layout), registry.DefaultParallel)
	reg1 = regs[1].CPUTime() - reg1
	if err := os.RemoveAll(layout); err != nil {
		tb.Fatal(err)
	}
	name := fmt.Sprintf("push-%s-layer", strings.ReplaceAll(mib(size), " ", ""))
	const target = 100
	fmt.Printf("peak-rss-%s: nixpush %.1f MiB, baseline %d MiB, ratio %.2f (baseline is the target; %d files; writing the same layer to oci: peaks at %.1f MiB)\n",
		name, u.rssMiB, target, u.rssMiB/target, nFiles, oci.rssMiB)
	result(name+"-vs-curl", u.wall, curl.wall, fmt.Sprintf("curl uploading the finished layer blob; CPU: nixpush %.1f s + its registry %.1f s, curl %.1f s + its registry %.1f s",
		u.cpu.Seconds(), reg0.Seconds(), curl.cpu.Seconds(), reg1.Seconds()))
	if u.rssMiB >= target {
		tb.Errorf("peak RSS %.1f MiB, target < %d MiB", u.rssMiB, target)
	}
}

// BenchmarkBigLayer: peak resident memory of `nixpush copy` pushing a
// one-layer image whose layer is NIXPUSH_BENCH_LAYER_BYTES (default
// 512 MiB; bench/release.sh --full: 4 GiB). Target: under 100 MiB.
func BenchmarkBigLayer(b *testing.B) {
	size := envInt("NIXPUSH_BENCH_LAYER_BYTES", 512<<20)
	for i := 0; i < b.N; i++ {
		benchBigLayer(b, size)
	}
}

// TestReleaseBenchSmall runs the release and big-layer benchmarks' code
// on tiny store paths, so every test run exercises it.
func TestReleaseBenchSmall(t *testing.T) {
	t.Run("big layer", func(t *testing.T) { benchBigLayer(t, 4<<20) })
	t.Run("release", func(t *testing.T) { benchRelease(t, 3, 8<<20, 2) })
}

// methods counts requests by method and status, e.g. "HEAD 404: 20".
func methods(reqs []testenv.Request) string {
	n := map[string]int{}
	for _, q := range reqs {
		n[fmt.Sprintf("%s %d", q.Method, q.Status)]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, n[k])
	}
	return b.String()
}
