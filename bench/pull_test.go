package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/pull"
)

// pullBench is the pull half of the base benchmark: nix-build of
// pullImage against skopeo copy docker://… oci:, with nixpush fetch-image
// alone and what Nix alone costs for an output of that size beside it,
// and, across a link of limited download rate, pullImage against skopeo
// again.
type pullBench struct {
	nixBuild, nixpush string
	lock              map[string]string
	args              []string // nix-build's arguments, before the attribute
	floor             []string // the floor derivation's attribute and arguments
	skopeoFOD         []string // the skopeo derivation's attribute and arguments
	link              string   // the proxy standing for a link to the registry
	mbit              int64
	pulled            string // the base pulled last, kept for the image
}

// newPullBench pins the base served by host with nixpush lock and writes
// the Nix expression the rounds build. With downRate above 0 (bytes per
// second), a testenv.TCPProxy passes the registry's responses at that
// rate, and the expression gets a pullImage through it (its own lock).
func newPullBench(tb testing.TB, host string, baseBytes, downRate int64) *pullBench {
	tb.Helper()
	pb := &pullBench{nixBuild: testenv.Tool(tb, "nix-build"), nixpush: nixpushBin(tb)}
	lockFile, lockJSON := pb.writeLock(tb, host)
	if err := json.Unmarshal([]byte(lockJSON), &pb.lock); err != nil {
		tb.Fatal(err)
	}
	expr := filepath.Join(tb.TempDir(), "base.nix")
	if err := os.WriteFile(expr, []byte(fmt.Sprintf(`{ nixpush, linkLock ? null }:
let np = import %q { inherit nixpush; }; lock = %q; in
rec {
  base = np.pullImageFromLockWith lock { tlsVerify = false; name = "nixpush-bench-base"; };
  baseLink = np.pullImageFromLockWith linkLock { tlsVerify = false; name = "nixpush-bench-base-link"; };
  image = np.buildImage {
    name = "bench/app";
    fromImage = base;
    config.Env = [ "MARKER=${builtins.toFile "nixpush-bench-marker" "x"}" ];
  };
  # The way dockerTools.pullImage and nix2container pull: skopeo as the
  # builder of a fixed-output derivation. Debian's skopeo is linked
  # dynamically, so this one runs outside the sandbox (__noChroot, with
  # sandbox = relaxed).
  skopeoFOD = { skopeo, ref, sha256 }: builtins.derivation {
    name = "nixpush-bench-skopeo";
    system = builtins.currentSystem;
    builder = skopeo;
    args = [ "copy" "-q" "--insecure-policy" "--src-tls-verify=false" ref "oci:${builtins.placeholder "out"}:base" ];
    __noChroot = true;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = sha256;
  };
  # What Nix alone costs for an output of that size: a fixed-output
  # derivation whose builder writes as many zero bytes, with no network,
  # no digest checks and nothing to read.
  floor = { busybox, mib, sha256 }: builtins.derivation {
    name = "nixpush-bench-floor";
    system = builtins.currentSystem;
    builder = "${busybox}/bin/busybox";
    args = [ "sh" "-c" "mkdir $out && dd if=/dev/zero of=$out/zeros bs=1048576 count=${toString mib}" ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = sha256;
  };
}
`, filepath.Join(testenv.RepoRoot(tb), "nix"), lockFile)), 0o644); err != nil {
		tb.Fatal(err)
	}
	// nixpush as users have it: a store path (the flake's package), so
	// that evaluation does not hash the binary into the store each time.
	nixpushDir := filepath.Dir(filepath.Dir(pb.nixpush))
	pb.args = []string{"--no-out-link", expr, "--arg", "nixpush", "builtins.storePath " + addToStore(tb, nixpushDir, false)}
	pb.floor = []string{"-A", "floor",
		"--arg", "busybox", "builtins.storePath " + addToStore(tb, testenv.BusyboxDir(tb), false),
		"--arg", "mib", fmt.Sprint(baseBytes >> 20), "--argstr", "sha256", zerosNARHash(tb, baseBytes>>20)}
	ref := "docker://" + pb.lock["imageName"] + "@" + pb.lock["imageDigest"]
	pb.skopeoFOD = []string{"-A", "skopeoFOD", "--option", "sandbox", "relaxed",
		"--argstr", "skopeo", testenv.Tool(tb, "skopeo"), "--argstr", "ref", ref, "--argstr", "sha256", skopeoNARHash(tb, ref)}
	if downRate > 0 {
		pb.link = testenv.StartTCPProxy(tb, host, testenv.TCPProxy{Rate: downRate})
		pb.mbit = downRate / 125_000
		linkLock, _ := pb.writeLock(tb, pb.link)
		pb.args = append(pb.args, "--argstr", "linkLock", linkLock)
	}
	return pb
}

// writeLock runs nixpush lock on host's base:v1 and writes what it
// prints to a file.
func (pb *pullBench) writeLock(tb testing.TB, host string) (file, lockJSON string) {
	tb.Helper()
	_, lockJSON = timed(tb, nil, pb.nixpush, "lock", "--tls-verify=false", "--arch", "amd64", "docker://"+host+"/base:v1")
	file = filepath.Join(tb.TempDir(), "base.lock.json")
	if err := os.WriteFile(file, []byte(lockJSON), 0o644); err != nil {
		tb.Fatal(err)
	}
	return file, lockJSON
}

// run measures runs rounds, sides taking turns at going first, and
// prints the figures.
func (pb *pullBench) run(tb testing.TB, host string, runs int, size string) {
	tb.Helper()
	var nix, fetch, floor, skopeo, skopeoFOD, nixLink, skopeoLink []time.Duration
	for i := range runs {
		sides := []func(){
			func() { nix = append(nix, pb.timeBuild(tb, i < runs-1, "-A", "base")) },
			func() { fetch = append(fetch, pb.fetchImage(tb)) },
			func() { floor = append(floor, pb.timeBuild(tb, true, pb.floor...)) },
			func() { skopeo = append(skopeo, skopeoPull(tb, host)) },
			func() { skopeoFOD = append(skopeoFOD, pb.timeBuild(tb, true, pb.skopeoFOD...)) },
		}
		if pb.link != "" {
			sides = append(sides,
				func() { nixLink = append(nixLink, pb.timeBuild(tb, true, "-A", "baseLink")) },
				func() { skopeoLink = append(skopeoLink, skopeoPull(tb, pb.link)) })
		}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			settle(tb)
			side()
		}
	}
	resultRuns("pullimage-vs-skopeo", nix, skopeo, "target <= 1.1; nix-build of pullImage (fetch, NAR hash check, store registration) against skopeo copy docker://… oci: of the "+size)
	resultRuns("fetch-image-vs-skopeo", fetch, skopeo, "nixpush fetch-image alone (pullImage's builder) against skopeo copy docker://… oci:; "+size)
	resultRuns("nix-floor-vs-skopeo", floor, skopeo, "what Nix alone costs for an output of that size (nix-build of a fixed-output derivation whose builder writes as many zero bytes) against skopeo copy docker://… oci:; "+size)
	resultRuns("pullimage-vs-nix-floor", nix, floor, "pullImage against that fixed-output derivation: what fetching over HTTP and checking every digest add to Nix's own cost; "+size)
	resultRuns("pullimage-vs-skopeo-fod", nix, skopeoFOD, "pullImage against nix-build of a fixed-output derivation whose builder is skopeo copy docker://… oci: (dockerTools.pullImage's and nix2container's way); "+size)
	if pb.link != "" {
		resultRuns(fmt.Sprintf("pullimage-vs-skopeo-%dmbit", pb.mbit), nixLink, skopeoLink,
			fmt.Sprintf("the same as pullimage-vs-skopeo, each side reaching the registry through a %d Mbit/s link (testenv.TCPProxy); %s", pb.mbit, size))
	}
}

// timeBuild runs nix-build of pb's expression with args and returns its
// wall time; the output is then deleted, or kept as pb.pulled.
func (pb *pullBench) timeBuild(tb testing.TB, del bool, args ...string) time.Duration {
	tb.Helper()
	u, out := timed(tb, nil, pb.nixBuild, append(slices.Clone(pb.args), args...)...)
	if !del {
		pb.pulled = out
		tb.Cleanup(func() { exec.Command(testenv.Tool(tb, "nix-store"), "--delete", out).Run() })
		return u.wall
	}
	stopTimer(tb)
	defer startTimer(tb)
	if msg, err := exec.Command(testenv.Tool(tb, "nix-store"), "--delete", out).CombinedOutput(); err != nil {
		tb.Fatalf("nix-store --delete %s: %v\n%s", out, err, msg)
	}
	return u.wall
}

// build runs nix-build of pb's attribute attr (untimed) and returns its
// output.
func (pb *pullBench) build(tb testing.TB, attr string) string {
	tb.Helper()
	_, out := timed(tb, nil, pb.nixBuild, append(slices.Clone(pb.args), "-A", attr)...)
	return out
}

// fetchImage runs nixpush fetch-image, pullImage's builder, alone into a
// new directory and returns its wall time.
func (pb *pullBench) fetchImage(tb testing.TB) time.Duration {
	tb.Helper()
	attrs := filepath.Join(tb.TempDir(), "attrs.json")
	a, err := json.Marshal(map[string]any{"outputs": map[string]string{"out": filepath.Join(tb.TempDir(), "fetch")},
		"imageName": pb.lock["imageName"], "imageDigest": pb.lock["imageDigest"], "os": "linux", "arch": "amd64", "tlsVerify": false})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(attrs, a, 0o644); err != nil {
		tb.Fatal(err)
	}
	u, _ := timed(tb, nil, pb.nixpush, "fetch-image", "--attrs", attrs)
	return u.wall
}

// skopeoNARHash is the NAR hash of the OCI layout skopeo copy writes of
// ref: the skopeo derivation's fixed hash.
func skopeoNARHash(tb testing.TB, ref string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "skopeo-layout")
	skopeoCopy(tb, "--src-tls-verify=false", ref, "oci:"+dir+":base")
	h, err := pull.NARHash(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// skopeoPull copies host's base:v1 into a new OCI layout with skopeo and
// returns its wall time.
func skopeoPull(tb testing.TB, host string) time.Duration {
	tb.Helper()
	return skopeoCopy(tb, "--src-tls-verify=false", "docker://"+host+"/base:v1", "oci:"+filepath.Join(tb.TempDir(), "skopeo")+":base")
}

// zerosNARHash is the NAR hash of a directory holding one file, zeros, of
// mib MiB of zero bytes: what the floor derivation of the base benchmark
// writes.
func zerosNARHash(tb testing.TB, mib int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "floor")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "zeros"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(mib << 20); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	h, err := pull.NARHash(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}
