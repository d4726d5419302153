package bench

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/registry"
)

// makeGzipBase writes an OCI layout (tag "base") of a base image of about
// total bytes of incompressible files in 4 gzip layers, and returns its
// layer blob files.
func makeGzipBase(tb testing.TB, layout string, total int64) []string {
	tb.Helper()
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		tb.Fatal(err)
	}
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
			tb.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	const nLayers, fileSize = 4, 1 << 20
	block := randomBlock([32]byte{'b', 'a', 's', 'e'})
	var files []string
	var m ocispec.Manifest
	var diffIDs []digest.Digest
	for l := range nLayers {
		tmp := filepath.Join(blobs, "tmp")
		f, err := os.Create(tmp)
		if err != nil {
			tb.Fatal(err)
		}
		blobHash, tarHash := sha256.New(), sha256.New()
		zw, _ := gzip.NewWriterLevel(io.MultiWriter(f, blobHash), gzip.BestSpeed)
		tw := tar.NewWriter(io.MultiWriter(zw, tarHash))
		for i := range int(total / nLayers / fileSize) {
			off := ((l*1000 + i) * 4099) % (len(block) - fileSize)
			hdr := &tar.Header{Name: fmt.Sprintf("layer%d/file%04d", l, i), Mode: 0o644, Size: fileSize, ModTime: time.Unix(1, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				tb.Fatal(err)
			}
			if _, err := tw.Write(block[off : off+fileSize]); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			tb.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			tb.Fatal(err)
		}
		st, _ := f.Stat()
		f.Close()
		d := digest.NewDigestFromBytes(digest.SHA256, blobHash.Sum(nil))
		name := filepath.Join(blobs, d.Encoded())
		if err := os.Rename(tmp, name); err != nil {
			tb.Fatal(err)
		}
		files = append(files, name)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: st.Size()})
		diffIDs = append(diffIDs, digest.NewDigestFromBytes(digest.SHA256, tarHash.Sum(nil)))
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	m.Versioned, m.MediaType = specs.Versioned{SchemaVersion: 2}, ocispec.MediaTypeImageManifest
	m.Config = put(cfg)
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	mb, _ := json.Marshal(m)
	md := put(mb)
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "base"}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{md}})
	for name, b := range map[string][]byte{"index.json": idx, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(layout, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return files
}

// timed runs a command and returns its wall and CPU time.
func timed(tb testing.TB, env []string, name string, args ...string) (usage, string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	t0 := time.Now()
	out, err := cmd.Output()
	u := usage{wall: time.Since(t0)}
	if err != nil {
		tb.Fatalf("%s %s: %v", name, strings.Join(args, " "), exitErr(err))
	}
	u.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return u, strings.TrimSpace(string(out))
}

// BenchmarkBaseImage: on a base of NIXPUSH_BENCH_BASE_BYTES (default 200
// MiB) of gzip layers, served by a local registry,
//   - pullImage (nix-build of the fixed-output derivation, and nixpush
//     fetch-image alone) against skopeo copy docker://… oci: of it, with
//     what Nix alone costs for an output of that size, and again across a
//     link of NIXPUSH_BENCH_DOWNLINK_MBIT (default 1000; 0 leaves it out);
//   - a cold push of an image on it (nixpush copy nix:… docker://) to an
//     empty registry: client CPU and wall time against curl uploading the
//     base's layer files.
//
// Each round, same run, sides alternating which goes first.
func BenchmarkBaseImage(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchBaseImage(b, envInt("NIXPUSH_BENCH_BASE_BYTES", 200<<20), int(envInt("NIXPUSH_BENCH_RUNS", 3)))
	}
}

// TestBaseBenchSmall runs the base benchmark's code on a tiny base.
func TestBaseBenchSmall(t *testing.T) { benchBaseImage(t, 8<<20, 1) }

func benchBaseImage(tb testing.TB, total int64, runs int) {
	tb.Helper()
	stopTimer(tb)
	testenv.RequireNix(tb)
	layout := filepath.Join(tb.TempDir(), "base")
	layerFiles := makeGzipBase(tb, layout, total)
	var baseBytes int64
	for _, f := range layerFiles {
		st, _ := os.Stat(f)
		baseBytes += st.Size()
	}
	src := testenv.StartRegistry(tb)
	skopeoCopy(tb, "--preserve-digests", "oci:"+layout+":base", "docker://"+src.Host+"/base:v1")
	size := fmt.Sprintf("base of %s in %d gzip layers", mib(baseBytes), len(layerFiles))
	pb := newPullBench(tb, src.Host, baseBytes, envInt("NIXPUSH_BENCH_DOWNLINK_MBIT", 1000)*125_000)
	startTimer(tb)
	pb.run(tb, src.Host, runs, size)
	stopTimer(tb)
	image := pb.build(tb, "image")
	tb.Cleanup(func() { exec.Command(testenv.Tool(tb, "nix-store"), "--delete", image).Run() })
	startTimer(tb)
	var rs rounds
	for i := range runs {
		rs = append(rs, pushRound(tb, i, func(host string) usage {
			return runNixpush(tb, "copy", "--dest-tls-verify=false", "nix:"+image, "docker://"+host+"/app:v1")
		}, layerFiles, 0))
	}
	stopTimer(tb)
	var nixCPU, curlCPU []time.Duration
	for _, r := range rs {
		nixCPU, curlCPU = append(nixCPU, r.nixpush.cpu), append(curlCPU, r.curl.cpu)
	}
	resultRuns("base-push-cpu-vs-curl", nixCPU, curlCPU, fmt.Sprintf("target <= 1; client CPU of a cold push of an image on a %s (plus its Nix layer and config) against curl uploading the base's layer files, %d at once", size, registry.DefaultParallel))
	nixWall, curlWall := rs.walls()
	resultRuns("base-push-wall-vs-curl", nixWall, curlWall, size+"; "+rs.cpu())
}
