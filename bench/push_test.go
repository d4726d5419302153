package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/builder"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
)

// describeSynthetic builds the description of a synthetic closure with
// one layer per store path, its layers compressed as comp says (nil: not
// at all), and returns it and a nix: reference reading it.
func describeSynthetic(tb testing.TB, s *synthetic, nLayers int, comp *layers.Compression) (*description.Image, *transport.Reference) {
	tb.Helper()
	a := s.attrs(tb, nLayers)
	a.Compression = comp
	img, err := builder.BuildImage(context.Background(), a, builder.WithRoot(s.root))
	if err != nil {
		tb.Fatal(err)
	}
	if len(img.Layers) != nLayers {
		tb.Fatalf("%d layers, want %d", len(img.Layers), nLayers)
	}
	ref, err := transport.NewReferenceFromImage("bench.json", img, layers.WithRoot(s.root))
	if err != nil {
		tb.Fatal(err)
	}
	return img, ref
}

// pushTo pushes ref to a plain-HTTP registry with a fresh blob-info cache,
// as a fresh CI runner would, and returns the wall time.
func pushTo(tb testing.TB, ref *transport.Reference, dest string, opts ...registry.Option) time.Duration {
	tb.Helper()
	d, err := imagecopy.ParseReference(dest)
	if err != nil {
		tb.Fatal(err)
	}
	opts = append([]registry.Option{registry.WithTLSVerify(false), registry.WithBlobInfoCacheDir(tb.TempDir())}, opts...)
	t0 := time.Now()
	if _, err := imagecopy.CopyImage(context.Background(), ref, d, imagecopy.WithRegistryOptions(opts...)); err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0)
}

// skopeoCopy runs skopeo copy with a private HOME and returns the wall time.
func skopeoCopy(tb testing.TB, args ...string) time.Duration {
	tb.Helper()
	bin := testenv.Tool(tb, "skopeo")
	cmd := exec.Command(bin, append([]string{"copy", "-q", "--dest-tls-verify=false"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+tb.TempDir())
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("skopeo copy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(t0)
}

// heapSampler records the largest Go heap in use while it runs.
type heapSampler struct {
	max  atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.max.Load() {
				h.max.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *heapSampler) done() float64 {
	close(h.stop)
	h.wg.Wait()
	return float64(h.max.Load()) / (1 << 20)
}

// BenchmarkPushCold: a cold push of a synthetic closure (default 256 MiB,
// 2,500 files, 20 store paths, one layer each; NIXPUSH_BENCH_BYTES and
// NIXPUSH_BENCH_FILES change it, bench/push.sh --full runs 1 GiB and
// 10,000 files) to an empty local registry, against skopeo copying the
// same layers from an OCI layout on disk to another empty registry, both
// as skopeo does by default (gzip on the fly) and with --preserve-digests
// (uncompressed, like nixpush), against crane pushing that layout, and
// against the registry-bound limit: curl uploading the layout's finished
// blobs, as many at once as nixpush does. Every side gets its own fresh
// registry.
func BenchmarkPushCold(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchPushCold(b, nil, envInt("NIXPUSH_BENCH_BYTES", 256<<20), int(envInt("NIXPUSH_BENCH_FILES", 2500)), int(envInt("NIXPUSH_BENCH_RUNS", 5)))
	}
}

// BenchmarkPushColdZstd: the cold push of BenchmarkPushCold with the
// image's layers zstd-compressed (default level), which nixpush compresses
// while it pushes, against curl uploading the same compressed blobs.
// Target: 1.2.
func BenchmarkPushColdZstd(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchPushCold(b, &layers.Compression{Algorithm: layers.Zstd}, envInt("NIXPUSH_BENCH_BYTES", 256<<20), int(envInt("NIXPUSH_BENCH_FILES", 2500)), int(envInt("NIXPUSH_BENCH_RUNS", 5)))
	}
}

// benchPushCold times runs rounds of a cold push of a synthetic closure of
// total bytes in files files, its layers compressed as comp says, against
// curl uploading the same finished blobs, exported to an OCI layout with
// their digests, and, uncompressed only, against skopeo and crane pushing
// that layout.
func benchPushCold(tb testing.TB, comp *layers.Compression, total int64, files, runs int) {
	tb.Helper()
	stopTimer(tb) // the fixture and the baseline's input are not timed
	s := makeSynthetic(tb, tb.TempDir(), 20, files, total)
	img, ref := describeSynthetic(tb, s, 20, comp)
	layout := filepath.Join(tb.TempDir(), "oci")
	pushTo(tb, ref, "oci:"+layout+":bench") // the baseline's input, not timed
	blobs := layoutBlobs(tb, layout)
	blobBytes := checkLayoutLayers(tb, blobs, img)
	s.hashFiles(tb) // warm the page cache for every side

	var rs, linked rounds
	var gzip, preserve, crane []time.Duration
	var heap float64
	push := func(host string) usage {
		runtime.GC() // the heap sampled is the push's, not the describes' garbage
		h := sampleHeap()
		cpu0 := selfCPU()
		wall := pushTo(tb, ref, "docker://"+host+"/bench:cold")
		heap = max(heap, h.done())
		return usage{wall: wall, cpu: selfCPU() - cpu0}
	}
	uplink := envInt("NIXPUSH_BENCH_UPLINK_MBIT", 1000)
	startTimer(tb)
	for i := 0; i < runs; i++ {
		rs = append(rs, pushRound(tb, i, push, blobs, 0))
		if comp != nil && uplink > 0 {
			linked = append(linked, pushRound(tb, i, push, blobs, uplink*1_000_000/8))
		}
		if comp == nil {
			stopTimer(tb)
			regs := []*testenv.Registry{testenv.StartRegistry(tb), testenv.StartRegistry(tb), testenv.StartRegistry(tb)}
			settle(tb)
			gzip = append(gzip, skopeoCopy(tb, "oci:"+layout+":bench", "docker://"+regs[0].Host+"/bench:cold"))
			settle(tb)
			preserve = append(preserve, skopeoCopy(tb, "--preserve-digests", "oci:"+layout+":bench", "docker://"+regs[1].Host+"/bench:cold"))
			settle(tb)
			crane = append(crane, cranePush(tb, layout, regs[2].Host+"/bench:cold"))
			stopTimer(tb)
			stopRegistries(tb, regs)
			startTimer(tb)
		}
	}
	stopTimer(tb)
	nixpush, curl := rs.walls()
	size := fmt.Sprintf("%s, %d files, %d layers", mib(s.bytes), s.files, len(s.paths))
	name, target := "cold-push-vs-curl", "target <= 1.2; curl uploading the finished blobs"
	if comp != nil {
		plain, _ := describeSynthetic(tb, s, 20, nil) // the tars' size, untimed
		name = fmt.Sprintf("cold-push-%s-vs-curl", comp.Algorithm)
		target = fmt.Sprintf("target <= 1.2; curl uploading the same %s blobs (%s, %.3f of the tars), which nixpush compresses while it pushes",
			comp.Algorithm, mib(blobBytes), float64(blobBytes)/float64(layerBytes(plain)))
	}
	resultRuns(name, nixpush, curl, fmt.Sprintf("%s, %d at once; %s; %s; largest Go heap of the pushing process %.0f MiB",
		target, registry.DefaultParallel, size, rs.cpu(), heap))
	if len(linked) > 0 {
		nixpush, curl := linked.walls()
		resultRuns(fmt.Sprintf("%s-%dmbit", name, uplink), nixpush, curl, fmt.Sprintf(
			"the same, each side uploading through its own proxy passing %d Mbit/s (testenv.TCPProxy UpRate): a registry across a link; %s; %s",
			uplink, size, linked.cpu()))
	}
	if comp == nil {
		resultRuns("cold-push-vs-skopeo-preserve", nixpush, preserve, "skopeo copy --preserve-digests oci: of the same layers; "+size)
		resultRuns("cold-push-vs-skopeo-gzip", nixpush, gzip, "skopeo copy oci: of the same layers, gzip on the fly; "+size)
		resultRuns("cold-push-vs-crane", nixpush, crane, "crane push of the same OCI layout; "+size)
	}
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(median(curl).Seconds(), "curl-s")
		b.ReportMetric(median(nixpush).Seconds(), "nixpush-s")
		b.ReportMetric(float64(s.bytes)/median(nixpush).Seconds()/1e6, "nixpush-MB/s")
		b.ReportMetric(heap, "max-heap-MiB")
		if comp == nil {
			b.ReportMetric(median(crane).Seconds(), "crane-s")
			b.ReportMetric(median(gzip).Seconds(), "skopeo-gzip-s")
			b.ReportMetric(median(preserve).Seconds(), "skopeo-preserve-s")
		}
	}
	tb.Logf("%d files, %d bytes in %d layers; per run: nixpush %v, curl %v, skopeo (gzip) %v, skopeo --preserve-digests %v, crane %v; largest Go heap %.1f MiB",
		s.files, s.bytes, len(s.paths), nixpush, curl, gzip, preserve, crane, heap)
}

// round is one round of a push against curl: each side's wall and CPU
// time, and its registry's CPU time.
type round struct {
	nixpush, curl       usage
	nixpushReg, curlReg time.Duration
}

type rounds []round

// pushRound pushes with push into a fresh registry and uploads blobs with
// curl, as many at once as nixpush does, into another: the sides take
// turns at going first (by i), each after a sync.
//
// With upRate above 0 each side reaches its registry through its own
// testenv.TCPProxy passing uploads at upRate bytes per second: a link to a
// registry elsewhere.
func pushRound(tb testing.TB, i int, push func(host string) usage, blobs []string, upRate int64) round {
	tb.Helper()
	stopTimer(tb)
	regs := []*testenv.Registry{testenv.StartRegistry(tb), testenv.StartRegistry(tb)}
	hosts := []string{regs[0].Host, regs[1].Host}
	if upRate > 0 {
		for j, h := range hosts {
			hosts[j] = testenv.StartTCPProxy(tb, h, testenv.TCPProxy{UpRate: upRate})
		}
	}
	startTimer(tb)
	var r round
	sides := []func(){func() {
		reg := regs[1].CPUTime()
		r.curl = curlUpload(tb, hosts[1], "bench", blobs, registry.DefaultParallel)
		r.curlReg = regs[1].CPUTime() - reg
	}, func() {
		reg := regs[0].CPUTime()
		r.nixpush = push(hosts[0])
		r.nixpushReg = regs[0].CPUTime() - reg
	}}
	if i%2 == 1 {
		sides[0], sides[1] = sides[1], sides[0]
	}
	for _, side := range sides {
		settle(tb)
		side()
	}
	stopTimer(tb)
	stopRegistries(tb, regs)
	startTimer(tb)
	return r
}

// walls returns each side's wall times, round by round.
func (rs rounds) walls() (nixpush, curl []time.Duration) {
	for _, r := range rs {
		nixpush, curl = append(nixpush, r.nixpush.wall), append(curl, r.curl.wall)
	}
	return nixpush, curl
}

// cpu says the CPU time per round of each side and its registry.
func (rs rounds) cpu() string {
	var c round
	for _, r := range rs {
		c.nixpush.cpu += r.nixpush.cpu
		c.curl.cpu += r.curl.cpu
		c.nixpushReg += r.nixpushReg
		c.curlReg += r.curlReg
	}
	n := float64(len(rs))
	return fmt.Sprintf("CPU per run: nixpush %.1f s + its registry %.1f s, curl %.1f s + its registry %.1f s",
		c.nixpush.cpu.Seconds()/n, c.nixpushReg.Seconds()/n, c.curl.cpu.Seconds()/n, c.curlReg.Seconds()/n)
}

// checkLayoutLayers checks that an OCI layout's blobs hold every layer
// of img under the digest its description gives (the export preserved
// them, compressed ones included) and returns the bytes of those blobs.
func checkLayoutLayers(tb testing.TB, blobs []string, img *description.Image) int64 {
	tb.Helper()
	sizes := map[string]int64{}
	for _, f := range blobs {
		st, err := os.Stat(f)
		if err != nil {
			tb.Fatal(err)
		}
		sizes["sha256:"+filepath.Base(f)] = st.Size()
	}
	var total int64
	for i, l := range img.Layers {
		size, ok := sizes[string(l.Digest)]
		if !ok || size != l.Size {
			tb.Fatalf("layer %d (%s, %d bytes) is not in the exported layout: its blob was not kept as described", i, l.Digest, l.Size)
		}
		total += size
	}
	return total
}

// layerBytes is the size of img's layer blobs.
func layerBytes(img *description.Image) int64 {
	var n int64
	for _, l := range img.Layers {
		n += l.Size
	}
	return n
}

// BenchmarkPushWarm: re-pushing a 100-layer image whose blobs all exist,
// from a fresh machine, through a proxy that delays every response by
// NIXPUSH_BENCH_RTT_MS (default 20) milliseconds like a remote registry.
// Measures the wall time and requests for containers/image's default of 6
// parallel blobs, for nixpush's default and for 32, and for skopeo
// re-pushing the same layers from an OCI layout; then nixpush and skopeo
// again straight to the registry on loopback.
func BenchmarkPushWarm(b *testing.B) {
	const nLayers = 100
	rtt := time.Duration(envInt("NIXPUSH_BENCH_RTT_MS", 20)) * time.Millisecond
	s := makeSynthetic(b, b.TempDir(), nLayers, 1000, 32<<20)
	_, ref := describeSynthetic(b, s, nLayers, nil)
	reg := testenv.StartRegistry(b)
	proxy := testenv.StartTCPProxy(b, reg.Host, testenv.TCPProxy{Delay: rtt})
	layout := filepath.Join(b.TempDir(), "oci")
	pushTo(b, ref, "oci:"+layout+":bench")
	pushTo(b, ref, "docker://"+reg.Host+"/bench:warm")
	skopeoCopy(b, "--preserve-digests", "oci:"+layout+":bench", "docker://"+reg.Host+"/skopeo:warm")

	type run struct {
		name string
		do   func() time.Duration
	}
	runs := []run{}
	for _, p := range []int{6, registry.DefaultParallel, 32} {
		runs = append(runs, run{fmt.Sprintf("nixpush-p%d", p), func() time.Duration {
			return pushTo(b, ref, "docker://"+proxy+"/bench:warm", registry.WithParallel(p))
		}})
	}
	runs = append(runs, run{"skopeo", func() time.Duration {
		return skopeoCopy(b, "--preserve-digests", "oci:"+layout+":bench", "docker://"+proxy+"/skopeo:warm")
	}}, run{"nixpush-loopback", func() time.Duration {
		return pushTo(b, ref, "docker://"+reg.Host+"/bench:warm")
	}}, run{"skopeo-loopback", func() time.Duration {
		return skopeoCopy(b, "--preserve-digests", "oci:"+layout+":bench", "docker://"+reg.Host+"/skopeo:warm")
	}})
	wall := make([]time.Duration, len(runs))
	reqs := make([]int, len(runs))
	writes := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, r := range runs {
			mark := reg.Mark()
			wall[j] += r.do()
			b.StopTimer()
			for _, q := range reg.Requests(mark) {
				reqs[j]++
				if q.IsBlobWrite() {
					writes++
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	if writes != 0 {
		b.Errorf("warm re-pushes wrote %d blobs, want none", writes)
	}
	n := float64(b.N)
	for j, r := range runs {
		b.ReportMetric(wall[j].Seconds()/n, r.name+"-s")
		b.ReportMetric(float64(reqs[j])/n, r.name+"-requests")
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "x-p6")
	b.ReportMetric(float64(wall[1])/float64(wall[3]), "x-skopeo")
	b.ReportMetric(float64(wall[4])/float64(wall[5]), "x-skopeo-loopback")
	result("warm-repush-100-layers-loopback", wall[4]/time.Duration(b.N), wall[5]/time.Duration(b.N),
		fmt.Sprintf("target nixpush < 0.5 s; baseline skopeo copy --preserve-digests oci:; requests: nixpush %d, skopeo %d", reqs[4]/b.N, reqs[5]/b.N))
	result(fmt.Sprintf("warm-repush-100-layers-rtt%dms", rtt.Milliseconds()), wall[1]/time.Duration(b.N), wall[3]/time.Duration(b.N),
		fmt.Sprintf("baseline skopeo copy --preserve-digests oci:; requests: nixpush %d, skopeo %d; nixpush at containers/image's default parallelism of 6: %.3f s", reqs[1]/b.N, reqs[3]/b.N, wall[0].Seconds()/float64(b.N)))
	b.Logf("%d layers, %v simulated round trip; wall per run: %v; requests per run: %v", nLayers, rtt, wall, reqs)
}

// TestPushBenchSmall runs the push benchmarks' code on a tiny closure, so
// every test run exercises it.
func TestPushBenchSmall(t *testing.T) {
	s := makeSynthetic(t, t.TempDir(), 5, 50, 1<<20)
	_, ref := describeSynthetic(t, s, 5, nil)
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartTCPProxy(t, reg.Host, testenv.TCPProxy{Delay: time.Millisecond})
	pushTo(t, ref, "docker://"+reg.Host+"/small:v1")
	mark := reg.Mark()
	pushTo(t, ref, "docker://"+proxy+"/small:v1")
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() {
			t.Errorf("re-push wrote a blob: %s", q)
		}
	}
}
