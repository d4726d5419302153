package bench

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// randomBlock is 8 MiB of pseudo-random bytes from seed: fixture files are
// cut from it at varying offsets, so no two are alike and memory stays
// small however large the fixture.
func randomBlock(seed [32]byte) []byte {
	block := make([]byte, 8<<20)
	rng := rand.New(rand.NewChaCha8(seed))
	for i := range block {
		block[i] = byte(rng.Uint32())
	}
	return block
}

// writeFixtureFile writes size bytes of block to name, starting at an
// offset chosen by the file's number f, creating its directory.
func writeFixtureFile(tb testing.TB, name string, block []byte, f int, size int64) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	fh, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	off := (int64(f) * 4099) % int64(len(block)/2)
	for left := size; left > 0; {
		n := min(left, int64(len(block))-off)
		if _, err := fh.Write(block[off : off+n]); err != nil {
			tb.Fatal(err)
		}
		left -= n
		off = 0
	}
	if err := fh.Close(); err != nil {
		tb.Fatal(err)
	}
}
