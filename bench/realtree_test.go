package bench

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport/registry"
)

// line100Mbit is a 100 Mbit/s line's rate in bytes per second.
const line100Mbit = 100_000_000 / 8

// goroot is the Go toolchain's tree, `go env GOROOT`: a real tree of
// sources, binaries and test data, on every machine that runs the
// benchmarks.
func goroot(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", exitErr(err))
	}
	return strings.TrimSpace(string(out))
}

// smallRealTree is a few MiB of the Go toolchain's sources, for the
// benchmarks' test.
func smallRealTree(tb testing.TB) string {
	return filepath.Join(goroot(tb), "src", "encoding")
}

// treeSize sums the sizes of the regular files below dir.
func treeSize(tb testing.TB, dir string) (bytes int64, files int) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		bytes += info.Size()
		files++
		return nil
	})
	if err != nil {
		tb.Fatalf("reading %s: %v", dir, err)
	}
	return bytes, files
}

// realTree adds a copy of the tree at dir to the Nix store as up to
// nPaths store paths called nixpush-bench-real-K: dir's entries, in
// sorted order, packed into groups of about equal bytes. The store paths
// are deleted when tb ends.
func realTree(tb testing.TB, dir string, nPaths int) []layers.Path {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	total, _ := treeSize(tb, dir)
	target := total / int64(nPaths)
	var groups [][]string
	var group []string
	var size int64
	for _, e := range entries {
		group = append(group, e.Name())
		n, _ := treeSize(tb, filepath.Join(dir, e.Name()))
		size += n
		if size >= target && len(groups) < nPaths-1 {
			groups, group, size = append(groups, group), nil, 0
		}
	}
	if len(group) > 0 {
		groups = append(groups, group)
	}
	var paths []layers.Path
	for k, g := range groups {
		cp := filepath.Join(tb.TempDir(), fmt.Sprintf("nixpush-bench-real-%d", k))
		if err := os.Mkdir(cp, 0o755); err != nil {
			tb.Fatal(err)
		}
		args := []string{"-a"}
		for _, name := range g {
			args = append(args, filepath.Join(dir, name))
		}
		if out, err := exec.Command("cp", append(args, cp)...).CombinedOutput(); err != nil {
			tb.Fatalf("copying %s: %v\n%s", dir, err, out)
		}
		paths = append(paths, storeInfo(tb, addStorePath(tb, cp)))
	}
	return paths
}

// benchRealTree adds the tree at dir to the Nix store as up to nPaths
// store paths and describes the image of them uncompressed, zstd and
// gzip, runs rounds: the compressed blobs' bytes against the tars' and the
// describes' times. Then it times the zstd image's cold push against curl
// (pushRealTree), and pulls the uncompressed and the zstd image with
// podman into a fresh storage, runs rounds taking turns, through a proxy
// that passes rate bytes per second, and straight from the registry.
func benchRealTree(tb testing.TB, dir string, nPaths, runs int, rate int64) {
	tb.Helper()
	testenv.RequireNix(tb)
	stopTimer(tb)
	bytes, files := treeSize(tb, dir)
	paths := realTree(tb, dir, nPaths)
	startTimer(tb)
	times, imgs := describeRounds(tb, imageAttrs(tb, paths, false, len(paths)), "", compressions, runs)
	stopTimer(tb)
	var largest int64
	for _, l := range imgs[0].Layers {
		largest = max(largest, l.Size)
	}
	size := fmt.Sprintf("%s as %d store paths, %s, %d files, largest layer %s", dir, len(paths), mib(bytes), files, mib(largest))
	reportCompressed("-real-tree", "real-tree", "", size, compressions, times, imgs)

	plain, zstd := imgs[0], imgs[1]
	reg := pushRealTree(tb, plain, zstd, runs, size)
	proxy := testenv.StartTCPProxy(tb, reg.Host, testenv.TCPProxy{Rate: rate})
	var diffIDs []digest.Digest
	for _, l := range plain.Layers {
		diffIDs = append(diffIDs, l.Digest)
	}
	var slowPlain, slowZstd, fastPlain, fastZstd []time.Duration
	for r := 0; r < runs; r++ {
		sides := []func(){
			func() { slowPlain = append(slowPlain, podmanPull(tb, proxy+"/real:plain", diffIDs)) },
			func() { slowZstd = append(slowZstd, podmanPull(tb, proxy+"/real:zstd", diffIDs)) },
			func() { fastPlain = append(fastPlain, podmanPull(tb, reg.Host+"/real:plain", diffIDs)) },
			func() { fastZstd = append(fastZstd, podmanPull(tb, reg.Host+"/real:zstd", diffIDs)) },
		}
		if r%2 == 1 {
			sides[0], sides[1], sides[2], sides[3] = sides[1], sides[0], sides[3], sides[2]
		}
		for _, side := range sides {
			side()
		}
	}
	mbit := float64(rate) * 8 / 1e6
	blobs := fmt.Sprintf("zstd blobs %s, uncompressed %s; %s", mib(layerBytes(zstd)), mib(layerBytes(plain)), size)
	resultRuns(fmt.Sprintf("podman-pull-zstd-vs-uncompressed-%.0fmbit", mbit), slowZstd, slowPlain,
		fmt.Sprintf("podman pull through a proxy passing %.0f Mbit/s, into a fresh vfs storage in %s: download, decompress, check and unpack every layer; %s; straight from the registry the pulls take %.2f s (zstd) and %.2f s",
			mbit, podmanDir(), blobs, median(fastZstd).Seconds(), median(fastPlain).Seconds()))
	resultRuns("podman-pull-zstd-vs-uncompressed-loopback", fastZstd, fastPlain,
		fmt.Sprintf("podman pull straight from the registry on loopback, into a fresh vfs storage in %s: what decompressing costs where the line is not the limit; %s", podmanDir(), blobs))
}

// pushRealTree times a cold push of the zstd image of a real tree with
// the nixpush binary against curl uploading the same blobs (exported with
// `nixpush copy nix:… oci:`), runs rounds, and reports the push's peak RSS
// against the uncompressed image's. It returns a registry holding both
// images, as real:plain and real:zstd.
func pushRealTree(tb testing.TB, plain, zstd *description.Image, runs int, size string) *testenv.Registry {
	tb.Helper()
	plainFile, zstdFile := writeImage(tb, plain), writeImage(tb, zstd)
	layout := filepath.Join(tb.TempDir(), "oci")
	runNixpush(tb, "copy", "-q", "nix:"+zstdFile, "oci:"+layout+":real")
	blobs := layoutBlobs(tb, layout)
	checkLayoutLayers(tb, blobs, zstd)
	var rs rounds
	var peak float64
	for i := 0; i < runs; i++ {
		rs = append(rs, pushRound(tb, i, func(host string) usage {
			u := runNixpush(tb, "copy", "-q", "--dest-tls-verify=false", "nix:"+zstdFile, "docker://"+host+"/real:zstd")
			peak = max(peak, u.rssMiB)
			return u
		}, blobs, 0))
	}
	nixpush, curl := rs.walls()
	resultRuns("cold-push-zstd-vs-curl-real-tree", nixpush, curl, fmt.Sprintf("nixpush copy of the zstd image (zstd blobs %s, uncompressed %s), compressing while it pushes, against curl uploading the same zstd blobs, %d at once; %s; %s; peak RSS %.0f MiB",
		mib(layerBytes(zstd)), mib(layerBytes(plain)), registry.DefaultParallel, size, rs.cpu(), peak))

	reg := testenv.StartRegistry(tb)
	pushed := map[string]usage{}
	for tag, f := range map[string]string{"plain": plainFile, "zstd": zstdFile} {
		pushed[tag] = runNixpush(tb, "copy", "-q", "--dest-tls-verify=false", "nix:"+f, "docker://"+reg.Host+"/real:"+tag)
	}
	fmt.Printf("peak-rss-push-zstd-real-tree: nixpush %.1f MiB, baseline %.1f MiB, ratio %.2f (baseline the push of the uncompressed image; nixpush copy to an empty registry, up to %d layers at once; %s)\n",
		pushed["zstd"].rssMiB, pushed["plain"].rssMiB, pushed["zstd"].rssMiB/pushed["plain"].rssMiB, registry.DefaultParallel, size)
	return reg
}

// writeImage writes img's description to a file and returns its path.
func writeImage(tb testing.TB, img *description.Image) string {
	tb.Helper()
	b, err := description.Marshal(img)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.CreateTemp(tb.TempDir(), "image-*.json")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return f.Name()
}

// podmanDir is where podmanPull puts podman's storage: in memory
// (/dev/shm) where there is such a place, else in TMPDIR. A disk's cost of
// creating files is the same for every image pulled and can swamp the
// rest: on the reference machine's virtual disk creating a file takes
// about 0.4 ms, and a pull of the Go sources (11,000 files) spends 30 s
// doing that, with or without compression.
func podmanDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && syscall.Access("/dev/shm", 2) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

// podmanPull pulls image (HOST:PORT/NAME:TAG, plain HTTP) with podman
// into a fresh vfs storage below podmanDir, checks that the image podman stored has
// diffIDs as its layers, removes the storage and returns the pull's wall
// time.
func podmanPull(tb testing.TB, image string, diffIDs []digest.Digest) time.Duration {
	tb.Helper()
	podman := testenv.Tool(tb, "podman")
	tmp, err := os.MkdirTemp(podmanDir(), "nixpush-bench-podman-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// The settings podman needs on this machine (see the CLI's podman
	// test); only pulls run here.
	conf := filepath.Join(tmp, "containers.conf")
	storage := filepath.Join(tmp, "storage.conf")
	for name, data := range map[string]string{
		conf: "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
		storage: fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(tmp, "graph"), filepath.Join(tmp, "run")),
	} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	env := append(os.Environ(), "CONTAINERS_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage, "HOME="+tmp)
	syscall.Sync() // untimed: no pull pays for the last one's writeback
	pull := exec.Command(podman, "pull", "-q", "--tls-verify=false", image)
	pull.Env = env
	t0 := time.Now()
	if out, err := pull.CombinedOutput(); err != nil {
		tb.Fatalf("podman pull %s: %v\n%s", image, err, out)
	}
	d := time.Since(t0)
	inspect := exec.Command(podman, "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}", image)
	inspect.Env = env
	out, err := inspect.CombinedOutput()
	if err != nil {
		tb.Fatalf("podman image inspect %s: %v\n%s", image, err, out)
	}
	want := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		want[i] = string(d)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		tb.Fatalf("podman pulled %s with layers %v, want %v", image, got, want)
	}
	return d
}

// BenchmarkRealTree: a real tree, NIXPUSH_BENCH_REAL_TREE (default the Go
// toolchain's sources, `go env GOROOT`/src; bench/compress.sh --full: the
// whole toolchain), added to the Nix store as 4 store paths: the bytes of
// its zstd and gzip layers against the uncompressed tars, describe times,
// and podman pulls of the zstd image against the uncompressed one through
// a proxy limited to 100 Mbit/s, NIXPUSH_BENCH_RUNS (default 3) rounds.
func BenchmarkRealTree(b *testing.B) {
	dir := os.Getenv("NIXPUSH_BENCH_REAL_TREE")
	if dir == "" {
		dir = filepath.Join(goroot(b), "src")
	}
	for i := 0; i < b.N; i++ {
		benchRealTree(b, dir, 4, int(envInt("NIXPUSH_BENCH_RUNS", 3)), line100Mbit)
	}
}
