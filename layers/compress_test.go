package layers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	stdgzip "compress/gzip"

	"github.com/klauspost/compress/zstd"
)

var compressions = []*Compression{{Algorithm: Zstd}, {Algorithm: Zstd, Level: 19}, {Algorithm: Gzip}, {Algorithm: Gzip, Level: 1}}

// decompress reads a compressed blob back: zstd with klauspost's decoder,
// gzip with the standard library's, which shares no code with the encoder.
func decompress(t *testing.T, c *Compression, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c.Algorithm {
	case Zstd:
		d, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case Gzip:
		g, err := stdgzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != "" || g.Comment != "" || !g.ModTime.IsZero() || g.Extra != nil {
			t.Errorf("gzip header carries name %q, comment %q, time %v, extra %q", g.Name, g.Comment, g.ModTime, g.Extra)
		}
		r = g
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", c.Algorithm, err)
	}
	return out
}

// TestCompressedBlob: a compressed layer's blob decompresses to the
// layer's tar, whose sha256 is the diffID; Open streams exactly the blob.
func TestCompressedBlob(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	ctx := context.Background()
	plain := Spec{Paths: []Path{{Path: fxBig}, {Path: fxEnv, Rewrite: "/"}}}
	var tar bytes.Buffer
	if err := Write(ctx, &tar, plain, WithRoot(root)); err != nil {
		t.Fatal(err)
	}
	for _, c := range compressions {
		spec := plain
		spec.Compression = c
		sums, err := Sum(ctx, spec, WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256Digest(tar.Bytes()); sums.DiffID.Encoded() != want {
			t.Errorf("%+v: diffID %s, want the tar's sha256 %s", *c, sums.DiffID, want)
		}
		rc := Open(ctx, spec, sums.Digest, sums.Size, WithRoot(root))
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%+v: Open: %v", *c, err)
		}
		if int64(len(blob)) != sums.Size || sha256Digest(blob) != sums.Digest.Encoded() {
			t.Errorf("%+v: Open streamed %d bytes that are not the blob Sum hashed", *c, len(blob))
		}
		if sums.Size >= int64(tar.Len())*3/4 {
			t.Errorf("%+v: %d compressed bytes of a %d-byte tar", *c, sums.Size, tar.Len())
		}
		if !bytes.Equal(decompress(t, c, blob), tar.Bytes()) {
			t.Errorf("%+v: the blob does not decompress to the layer's tar", *c)
		}
	}
}

// TestCompressionIgnoresWriteSizes: the encoders' output depends on the
// bytes alone, not on how they arrive (file reads may come in other sizes
// on another host).
func TestCompressionIgnoresWriteSizes(t *testing.T) {
	data := generated("2097152")
	for _, c := range compressions {
		var want []byte
		for seed := uint64(0); seed < 4; seed++ {
			var out bytes.Buffer
			zw, err := newCompressor(&out, c)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(seed, 1))
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN([]int{1, 700, 70_000, 3 << 20}[seed]))
				if seed == 0 {
					n = len(rest) // one write
				}
				if _, err := zw.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = out.Bytes()
			} else if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%+v: writes of other sizes (seed %d) give other bytes", *c, seed)
			}
		}
	}
}

// TestCompressedMismatch: a compressed layer whose store path changed ends
// its stream with a *MismatchError naming that store path.
func TestCompressedMismatch(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	ctx := context.Background()
	spec := Spec{Paths: []Path{{Path: fxBig, NarHash: narHashOf(t, filepath.Join(root, fxBig))}}, Compression: &Compression{Algorithm: Zstd}}
	want, size, err := Digest(ctx, spec, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, fxBig, "small"), []byte("changed after the build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := Open(ctx, spec, want, size, WithRoot(root))
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Changed) != 1 || me.Changed[0].Path != fxBig {
		t.Fatalf("Open: %v, want a mismatch naming %s", err, fxBig)
	}
	if err := Verify(ctx, spec, want, size, WithRoot(root)); !errors.As(err, &me) {
		t.Errorf("Verify: %v, want a mismatch", err)
	}
}

func TestCompressionValidate(t *testing.T) {
	for _, c := range []struct {
		c    Compression
		want string
	}{
		{Compression{}, "algorithm: missing"},
		{Compression{Algorithm: "xz"}, `algorithm: "xz"`},
		{Compression{Algorithm: Zstd, Level: 23}, "level: 23"},
		{Compression{Algorithm: Gzip, Level: 10}, "level: 10"},
		{Compression{Algorithm: Gzip, Level: -1}, "level: -1"},
	} {
		spec := Spec{Paths: []Path{{Path: fxTree}}, Compression: &c.c}
		if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "compression."+c.want) {
			t.Errorf("%+v: %v, want compression.%s", c.c, err, c.want)
		}
	}
}

// TestCompressorMemory: a zstd encoder holds a few MiB, so that a push
// compressing as many layers at once as it uploads (16) stays small.
func TestCompressorMemory(t *testing.T) {
	data := generated("4194304")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var zws []io.WriteCloser
	for i := 0; i < 8; i++ {
		zw, err := newCompressor(io.Discard, &Compression{Algorithm: Zstd})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		zws = append(zws, zw)
	}
	runtime.ReadMemStats(&after)
	perEncoder := float64(after.HeapInuse-before.HeapInuse) / float64(len(zws)) / (1 << 20)
	t.Logf("%.1f MiB per zstd encoder", perEncoder)
	if perEncoder > 10 {
		t.Errorf("a zstd encoder holds %.1f MiB, want at most 10", perEncoder)
	}
	for _, zw := range zws {
		zw.Close()
	}
}
