package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/builder"
)

// synthetic is a fixture closure on disk, below root, shaped like a real
// one: a chain of store paths (each depends on the previous), many files.
type synthetic struct {
	root  string
	paths []string
	bytes int64
	files int
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// makeSynthetic writes nPaths store paths holding nFiles files and about
// total bytes in all. File contents come from one pseudo-random block read
// at varying offsets, so no two files are alike and memory stays small.
func makeSynthetic(tb testing.TB, dir string, nPaths, nFiles int, total int64) *synthetic {
	tb.Helper()
	s := &synthetic{root: dir}
	block := randomBlock([32]byte{1})
	avg := total / int64(nFiles)
	for p := 0; p < nPaths; p++ {
		sp := fmt.Sprintf("/nix/store/%032d-bench-%02d", p, p)
		s.paths = append(s.paths, sp)
		for f := p; f < nFiles; f += nPaths {
			// Sizes vary from 0.25× to 1.75× the average.
			size := avg/4 + avg*int64(f%7)/4
			name := filepath.Join(dir, sp, fmt.Sprintf("d%02d", f%16), fmt.Sprintf("file-%05d", f))
			writeFixtureFile(tb, name, block, f, size)
			s.bytes += size
			s.files++
		}
	}
	return s
}

// attrs is what Nix would hand the buildImage builder for this closure:
// a chain of store paths, each depending on the previous, the last the
// image's dependency. The fixture's NAR hashes are not checked.
func (s *synthetic) attrs(tb testing.TB, maxLayers int) *builder.Attrs {
	tb.Helper()
	var paths []layers.Path
	for _, p := range s.paths {
		paths = append(paths, layers.Path{Path: p, NarHash: "sha256:" + strings.Repeat("0", 52), NarSize: 1})
	}
	return imageAttrs(tb, paths, true, maxLayers)
}

// imageAttrs is what Nix would hand the buildImage builder for an image
// of paths: with chain, each path depends on the previous and the last is
// the image's dependency; without, the paths depend on nothing and are
// all the image's dependencies.
func imageAttrs(tb testing.TB, paths []layers.Path, chain bool, maxLayers int) *builder.Attrs {
	tb.Helper()
	type node struct {
		Path       string   `json:"path"`
		NarHash    string   `json:"narHash"`
		NarSize    uint64   `json:"narSize"`
		References []string `json:"references"`
	}
	var nodes []node
	deps := []string{paths[len(paths)-1].Path}
	if !chain {
		deps = nil
	}
	for i, p := range paths {
		n := node{Path: p.Path, NarHash: p.NarHash, NarSize: p.NarSize}
		if chain && i > 0 {
			n.References = []string{paths[i-1].Path}
		}
		if !chain {
			deps = append(deps, p.Path)
		}
		nodes = append(nodes, n)
	}
	graph, err := json.Marshal(nodes)
	if err != nil {
		tb.Fatal(err)
	}
	a := &builder.Attrs{
		Closure:      graph,
		Deps:         deps,
		MaxLayers:    maxLayers,
		ImageName:    "bench",
		Created:      "1970-01-01T00:00:01Z",
		Architecture: "amd64",
		OS:           "linux",
	}
	a.Outputs.Out = "/nix/store/00000000000000000000000000000000-bench.json"
	return a
}

// hashFiles is the limit describing is measured against: Go's sha256 over
// the same files' bytes, read the same way, one store path per worker, on
// all cores.
func (s *synthetic) hashFiles(tb testing.TB) {
	work := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for p := range work {
				var files []string
				filepath.WalkDir(filepath.Join(s.root, p), func(path string, d os.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						files = append(files, path)
					}
					return err
				})
				sort.Strings(files)
				h := sha256.New()
				for _, f := range files {
					fh, err := os.Open(f)
					if err != nil {
						tb.Error(err)
						return
					}
					io.CopyBuffer(h, struct{ io.Reader }{fh}, buf)
					fh.Close()
				}
				h.Sum(nil)
			}
		}()
	}
	for _, p := range s.paths {
		work <- p
	}
	close(work)
	wg.Wait()
}

// peakRSS is the process's high-water mark of resident memory, in MiB.
func peakRSS(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkDescribe: describing an image of a synthetic closure (default
// 1 GiB, 10,000 files, 20 store paths, maxLayers 20) with the buildImage
// builder, against Go's sha256 over the same bytes on all cores, measured
// in the same run. Reports the ratio (target ≤ 1.5) and the process's peak
// RSS (target < 100 MiB). NIXPUSH_BENCH_BYTES and NIXPUSH_BENCH_FILES
// change the size.
func BenchmarkDescribe(b *testing.B) {
	total := envInt("NIXPUSH_BENCH_BYTES", 1<<30)
	files := int(envInt("NIXPUSH_BENCH_FILES", 10000))
	s := makeSynthetic(b, b.TempDir(), 20, files, total)
	a := s.attrs(b, 20)
	ctx := context.Background()
	s.hashFiles(b) // warm the page cache for both sides
	var limit, describe time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		s.hashFiles(b)
		t1 := time.Now()
		img, err := builder.BuildImage(ctx, a, builder.WithRoot(s.root))
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if len(img.Layers) != 20 {
			b.Fatalf("%d layers, want 20", len(img.Layers))
		}
		limit += t1.Sub(t0)
		describe += t2.Sub(t1)
	}
	b.StopTimer()
	b.SetBytes(s.bytes)
	b.ReportMetric(float64(describe)/float64(limit), "x-sha256-limit")
	b.ReportMetric(float64(s.bytes)/describe.Seconds()*float64(b.N)/1e6, "describe-MB/s")
	b.ReportMetric(float64(s.bytes)/limit.Seconds()*float64(b.N)/1e6, "sha256-MB/s")
	b.ReportMetric(peakRSS(b), "peak-rss-MiB")
	result("describe-vs-sha256", describe/time.Duration(b.N), limit/time.Duration(b.N),
		fmt.Sprintf("target <= 1.5; Go's sha256 over the same files on all cores; %s, %d files, %d store paths; peak RSS %.0f MiB",
			mib(s.bytes), s.files, len(s.paths), peakRSS(b)))
	b.Logf("%d files, %d bytes, %d store paths; describe %v, sha256 limit %v over %d runs",
		s.files, s.bytes, len(s.paths), describe, limit, b.N)
}

// TestSyntheticDescribe runs the benchmark's path on a small closure so
// the benchmark code itself is exercised by every test run.
func TestSyntheticDescribe(t *testing.T) {
	s := makeSynthetic(t, t.TempDir(), 20, 200, 2<<20)
	img, err := builder.BuildImage(context.Background(), s.attrs(t, 20), builder.WithRoot(s.root))
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 20 || s.files != 200 {
		t.Fatalf("%d layers from %d files", len(img.Layers), s.files)
	}
	// The most depended-on path is the bottom layer.
	if img.Layers[0].Paths[0].Path != s.paths[0] {
		t.Fatalf("bottom layer holds %s, want %s", img.Layers[0].Paths[0].Path, s.paths[0])
	}
}
