package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/builder"
	"github.com/nixpush/nixpush/layers/description"
)

// compressions are the compressed variants the benchmarks of issue #14
// measure against the uncompressed image: zstd and gzip at their default
// levels, as an image that asks for {"algorithm": "zstd"} gets.
var compressions = []*layers.Compression{{Algorithm: layers.Zstd}, {Algorithm: layers.Gzip}}

// describeRounds describes the image of a (store paths read below root,
// "" for the real store) uncompressed and then as each of comps says,
// runs times each with the builder's own code path (BuildImage: every
// layer tarred and hashed, and compressed, in parallel), the sides taking
// turns at going first. times[0] are the uncompressed describe's,
// times[1+i] comps[i]'s; imgs are the descriptions in the same order.
func describeRounds(tb testing.TB, a *builder.Attrs, root string, comps []*layers.Compression, runs int) (times [][]time.Duration, imgs []*description.Image) {
	tb.Helper()
	sides := append([]*layers.Compression{nil}, comps...)
	times = make([][]time.Duration, len(sides))
	imgs = make([]*description.Image, len(sides))
	var opts []builder.Option
	if root != "" {
		opts = append(opts, builder.WithRoot(root))
	}
	for r := 0; r < runs; r++ {
		for k := range sides {
			j := (k + r) % len(sides)
			ac := *a
			ac.Compression = sides[j]
			t0 := time.Now()
			img, err := builder.BuildImage(context.Background(), &ac, opts...)
			if err != nil {
				tb.Fatalf("describing with compression %v: %v", sides[j], err)
			}
			times[j] = append(times[j], time.Since(t0))
			imgs[j] = img
		}
	}
	for i, c := range comps {
		checkCompressed(tb, imgs[0], imgs[1+i], c)
	}
	return times, imgs
}

// checkCompressed checks a compressed description against the
// uncompressed one of the same image: the same layers, each with the
// compressed media type, its diffID the uncompressed tar's digest, and a
// blob digest of its own.
func checkCompressed(tb testing.TB, plain, img *description.Image, c *layers.Compression) {
	tb.Helper()
	if len(img.Layers) != len(plain.Layers) {
		tb.Fatalf("%s: %d layers, uncompressed %d", c.Algorithm, len(img.Layers), len(plain.Layers))
	}
	for i, l := range img.Layers {
		p := plain.Layers[i]
		switch {
		case l.MediaType != description.LayerMediaType(c):
			tb.Errorf("%s layer %d: media type %s, want %s", c.Algorithm, i, l.MediaType, description.LayerMediaType(c))
		case l.DiffID != p.Digest:
			tb.Errorf("%s layer %d: diffID %s, but the uncompressed tar is %s", c.Algorithm, i, l.DiffID, p.Digest)
		case l.Digest == p.Digest:
			tb.Errorf("%s layer %d: the blob digest is the uncompressed tar's", c.Algorithm, i)
		}
	}
}

// reportCompressed prints, for each of comps, the describe's time against
// the uncompressed describe's (describe-ALG-vs-uncompressed+suffix) and
// the compressed blobs' bytes against the tars' (bytes-ALG-kind), from
// describeRounds' results.
func reportCompressed(suffix, kind, target, notes string, comps []*layers.Compression, times [][]time.Duration, imgs []*description.Image) {
	for i, c := range comps {
		t := ""
		if c.Algorithm == layers.Zstd && target != "" {
			t = target + "; "
		}
		resultRuns(fmt.Sprintf("describe-%s-vs-uncompressed%s", c.Algorithm, suffix), times[1+i], times[0],
			fmt.Sprintf("%sbaseline the uncompressed describe; %s level %d; %s", t, c.Algorithm, defaultLevel(c), notes))
	}
	for i, c := range comps {
		resultBytes(fmt.Sprintf("bytes-%s-%s", c.Algorithm, kind), layerBytes(imgs[1+i]), layerBytes(imgs[0]),
			fmt.Sprintf("%s level %d blobs against the uncompressed tars; %s", c.Algorithm, defaultLevel(c), notes))
	}
}

// resultBytes prints a size figure in the shape bench/run collects:
// "name: nixpush X MiB, baseline Y MiB, ratio Z (notes)".
func resultBytes(name string, nixpush, baseline int64, notes string) {
	fmt.Printf("%s: nixpush %.1f MiB, baseline %.1f MiB, ratio %.3f (%s)\n",
		name, float64(nixpush)/(1<<20), float64(baseline)/(1<<20), float64(nixpush)/float64(baseline), notes)
}

// defaultLevel is the level a Compression without one gets.
func defaultLevel(c *layers.Compression) int {
	switch {
	case c.Level != 0:
		return c.Level
	case c.Algorithm == layers.Zstd:
		return layers.DefaultZstdLevel
	default:
		return layers.DefaultGzipLevel
	}
}

// benchDescribeCompressed describes the synthetic closure of
// BenchmarkDescribe uncompressed, zstd and gzip, runs rounds.
func benchDescribeCompressed(tb testing.TB, total int64, files, runs int) {
	tb.Helper()
	stopTimer(tb)
	s := makeSynthetic(tb, tb.TempDir(), 20, files, total)
	s.hashFiles(tb) // warm the page cache for every side
	startTimer(tb)
	times, imgs := describeRounds(tb, s.attrs(tb, 20), s.root, compressions, runs)
	stopTimer(tb)
	reportCompressed("", "synthetic", "target <= 2.5",
		fmt.Sprintf("synthetic closure, %s, %d files, %d layers: pseudo-random bytes, but every file is cut from the same 8 MiB block: gzip's 32 KiB window sees no repeats, zstd's 8 MiB window sees the files of a layer repeat each other", mib(s.bytes), s.files, len(s.paths)),
		compressions, times, imgs)
}

// BenchmarkDescribeCompressed: describing the synthetic closure of
// BenchmarkDescribe (default 1 GiB, 10,000 files, 20 layers;
// NIXPUSH_BENCH_BYTES, NIXPUSH_BENCH_FILES) with zstd and with gzip at
// their default levels, each against the uncompressed describe measured in
// the same rounds (NIXPUSH_BENCH_RUNS, default 5): target for zstd ≤ 2.5.
// Also the bytes of the compressed blobs against the tars.
func BenchmarkDescribeCompressed(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchDescribeCompressed(b, envInt("NIXPUSH_BENCH_BYTES", 1<<30), int(envInt("NIXPUSH_BENCH_FILES", 10000)), int(envInt("NIXPUSH_BENCH_RUNS", 5)))
	}
}

// TestCompressBenchSmall runs the benchmarks of compressed layers on
// small inputs, so every test run exercises their code: describing, the
// cold push of a zstd image against curl, and a real tree's bytes and
// podman pulls through a rate-limited proxy.
func TestCompressBenchSmall(t *testing.T) {
	t.Run("describe", func(t *testing.T) { benchDescribeCompressed(t, 4<<20, 200, 1) })
	t.Run("cold push", func(t *testing.T) { benchPushCold(t, nil, 2<<20, 100, 1) })
	t.Run("cold push zstd", func(t *testing.T) { benchPushCold(t, compressions[0], 2<<20, 100, 1) })
	t.Run("real tree", func(t *testing.T) { benchRealTree(t, smallRealTree(t), 2, 1, line100Mbit) })
}
