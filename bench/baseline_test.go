package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
)

// result prints one benchmark figure as bench/run collects it:
// "name: nixpush X s, baseline Y s, ratio Z (notes)".
func result(name string, nixpush, baseline time.Duration, notes string) {
	fmt.Printf("%s: nixpush %.3f s, baseline %.3f s, ratio %.2f (%s)\n",
		figure(name), nixpush.Seconds(), baseline.Seconds(), nixpush.Seconds()/baseline.Seconds(), notes)
}

// figure names a figure: name, with "-distribution" appended when the
// registries are distribution v3 (NIXPUSH_TEST_REGISTRY, see
// testenv.StartRegistry) rather than the default docker-registry, so that
// one summary holds both.
func figure(name string) string {
	if impl, err := testenv.ImplementationFromEnv(); err == nil && impl != testenv.DockerRegistry {
		return name + "-" + string(impl)
	}
	return name
}

// resultRuns prints a figure timed over several runs, nixpush[i] and
// baseline[i] measured in the same round: the median time of each side
// and the median of the rounds' ratios, which one disturbed round on a
// small shared machine does not move, with every round's ratio in the
// notes.
func resultRuns(name string, nixpush, baseline []time.Duration, notes string) {
	ratios := make([]float64, len(nixpush))
	per := make([]string, len(nixpush))
	for i := range nixpush {
		ratios[i] = nixpush[i].Seconds() / baseline[i].Seconds()
		per[i] = fmt.Sprintf("%.2f", ratios[i])
	}
	fmt.Printf("%s: nixpush %.3f s, baseline %.3f s, ratio %.2f (median of %d runs, ratios %s; %s)\n",
		figure(name), median(nixpush).Seconds(), median(baseline).Seconds(), median(ratios), len(ratios), strings.Join(per, ", "), notes)
}

// median returns the middle value (the mean of the two middle ones for an
// even count) of xs.
func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// usage is what a run took: wall and CPU time (user and system), and
// peak resident memory where known.
type usage struct {
	wall, cpu time.Duration
	rssMiB    float64
}

// selfCPU returns this process's CPU time so far, for in-process runs.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// layoutBlobs returns every blob file of an OCI layout: what a minimal
// client would upload to push everything the layout holds.
func layoutBlobs(tb testing.TB, layout string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(layout, "blobs", "sha256", "*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no blobs in %s: %v", layout, err)
	}
	return files
}

// curlUpload is the registry-bound limit: it uploads each finished blob
// file to host/repo with curl, parallel at a time, as a monolithic upload
// (POST to open a session, one PUT ?digest= streaming the file), and
// returns the wall time and the CPU time of all the curl processes.
// Nothing is hashed, read twice or checked first.
func curlUpload(tb testing.TB, host, repo string, files []string, parallel int) usage {
	tb.Helper()
	bin := testenv.Tool(tb, "curl")
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var cpu time.Duration
	t0 := time.Now()
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				c, err := curlBlob(bin, host, repo, f)
				mu.Lock()
				cpu += c
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	d := time.Since(t0)
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return usage{wall: d, cpu: cpu}
}

func curlBlob(bin, host, repo, file string) (time.Duration, error) {
	post := exec.Command(bin, "-sS", "-f", "-X", "POST", "-o", "/dev/null", "-w", "%header{location}",
		"http://"+host+"/v2/"+repo+"/blobs/uploads/")
	out, err := post.Output()
	if err != nil {
		return 0, fmt.Errorf("curl POST %s: %w", repo, exitErr(err))
	}
	cpu := post.ProcessState.UserTime() + post.ProcessState.SystemTime()
	loc := strings.TrimSpace(string(out))
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + host + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	// The file name in an OCI layout is the digest's hex.
	u := loc + sep + "digest=sha256:" + filepath.Base(file)
	put := exec.Command(bin, "-sS", "-f", "-o", "/dev/null", "-H", "Expect:",
		"-H", "Content-Type: application/octet-stream", "-T", file, u)
	if out, err := put.CombinedOutput(); err != nil {
		return cpu, fmt.Errorf("curl PUT %s: %w\n%s", file, err, out)
	}
	return cpu + put.ProcessState.UserTime() + put.ProcessState.SystemTime(), nil
}

func exitErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// cranePush pushes an OCI layout with crane (.work/tools/crane, which
// .ci/setup installs, else crane on PATH) and returns the wall time.
func cranePush(tb testing.TB, layout, dest string) time.Duration {
	tb.Helper()
	cmd := exec.Command(testenv.Tool(tb, "crane"), "push", "--insecure", layout, dest)
	cmd.Env = append(os.Environ(), "HOME="+tb.TempDir())
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("crane push %s %s: %v\n%s", layout, dest, err, out)
	}
	return time.Since(t0)
}

// nixpushBin returns the nixpush binary: NIXPUSH_BENCH_BIN (bench/run
// builds it), else one built for this test binary.
func nixpushBin(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("NIXPUSH_BENCH_BIN"); p != "" {
		return p
	}
	return filepath.Join(testenv.NixpushDir(tb), "bin", "nixpush")
}

// runNixpush runs the nixpush binary and returns its wall and CPU time and
// peak resident memory. It starts nixpush through peakrss (see
// bench/internal/peakrss), since the rusage of a child this process
// started itself would hold this process's own peak when that is higher.
func runNixpush(tb testing.TB, args ...string) usage {
	tb.Helper()
	peak := filepath.Join(tb.TempDir(), "peak")
	cmd := exec.Command(peakrssBin(tb), append([]string{peak, nixpushBin(tb)}, args...)...)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	u := usage{wall: time.Since(t0)}
	if err != nil {
		tb.Fatalf("nixpush %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// peakrss's rusage includes nixpush's, which it waited for.
	u.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b, err := os.ReadFile(peak)
	if err != nil {
		tb.Fatalf("nixpush's peak RSS: %v", err)
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		tb.Fatalf("nixpush's peak RSS: %v", err)
	}
	u.rssMiB = kb / 1024
	return u
}

var peakrss struct {
	sync.Once
	bin string
	err error
}

// peakrssBin builds bench/internal/peakrss once per test binary.
func peakrssBin(tb testing.TB) string {
	tb.Helper()
	peakrss.Do(func() {
		dir, err := os.MkdirTemp("", "nixpush-bench-peakrss-")
		if err != nil {
			peakrss.err = err
			return
		}
		bin := filepath.Join(dir, "peakrss")
		cmd := exec.Command("go", "build", "-o", bin, "./bench/internal/peakrss")
		cmd.Dir = testenv.RepoRoot(tb)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			peakrss.err = fmt.Errorf("go build ./bench/internal/peakrss: %w\n%s", err, out)
			return
		}
		peakrss.bin = bin
	})
	if peakrss.err != nil {
		tb.Fatal(peakrss.err)
	}
	return peakrss.bin
}

// addStorePath adds dir to the Nix store, deletes dir, and deletes the
// store path again when the benchmark ends.
func addStorePath(tb testing.TB, dir string) string {
	tb.Helper()
	sp := addToStore(tb, dir, true)
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	return sp
}

// addToStore adds dir to the Nix store and returns its store path, which
// is deleted again when the benchmark ends: failing to is an error when
// strict, else ignored (a path that the run's derivations name as an
// input stays).
func addToStore(tb testing.TB, dir string, strict bool) string {
	tb.Helper()
	out, err := exec.Command(testenv.Tool(tb, "nix-store"), "--add", dir).Output()
	if err != nil {
		tb.Fatalf("nix-store --add %s: %v", dir, exitErr(err))
	}
	sp := strings.TrimSpace(string(out))
	tb.Cleanup(func() {
		out, err := exec.Command(testenv.Tool(tb, "nix-store"), "--delete", sp).CombinedOutput()
		if err != nil && strict {
			tb.Errorf("nix-store --delete %s: %v\n%s", sp, err, out)
		}
	})
	return sp
}

// mib formats a byte count.
func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// stopRegistries stops regs and deletes what they stored, so that repeated
// runs do not fill the disk.
func stopRegistries(tb testing.TB, regs []*testenv.Registry) {
	tb.Helper()
	for _, r := range regs {
		if err := r.Stop(); err != nil {
			tb.Fatal(err)
		}
	}
}

// settle writes dirty pages back to disk, untimed, before a timed side, so
// that no side pays for the writeback of what the previous one stored.
func settle(tb testing.TB) {
	stopTimer(tb)
	syscall.Sync()
	startTimer(tb)
}

// stopTimer stops a benchmark's timer; a test has none.
func stopTimer(tb testing.TB) {
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
}

// startTimer starts a benchmark's timer again; a test has none.
func startTimer(tb testing.TB) {
	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
}
