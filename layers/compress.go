package layers

import (
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression algorithms of a layer blob. A Spec without Compression is an
// uncompressed tar.
const (
	Zstd = "zstd"
	Gzip = "gzip"
)

// Default levels, used when Compression.Level is 0.
const (
	DefaultZstdLevel = 3 // zstd's own default
	DefaultGzipLevel = 6 // gzip's own default
)

// Compression says how a layer's tar is compressed into its blob. The
// compressed bytes depend only on the tar's bytes, the algorithm and the
// level (and CompressionFormatVersion): the encoders run single-threaded
// with fixed settings, and gzip headers carry no name and no time.
type Compression struct {
	// Algorithm is Zstd or Gzip.
	Algorithm string `json:"algorithm"`
	// Level is the algorithm's level (zstd 1–22, gzip 1–9); 0 is the
	// default level.
	Level int `json:"level,omitempty"`
}

// zstdWindow is the zstd window (the longest back-reference) of every
// level.
const zstdWindow = 2 << 20

// CompressionFormatVersion is the version of the compressed encodings:
// zstd and gzip from github.com/klauspost/compress v1.19.1 with the
// settings of newCompressor. An upgrade of the library that changes a
// golden digest of testdata/golden.txt changes it.
const CompressionFormatVersion = 1

// Validate checks c. Errors start with the field at fault.
func (c *Compression) Validate() error {
	switch c.Algorithm {
	case Zstd:
		if c.Level < 0 || c.Level > 22 {
			return fmt.Errorf("level: %d is not a zstd level (1–22, or 0 for %d)", c.Level, DefaultZstdLevel)
		}
	case Gzip:
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("level: %d is not a gzip level (1–9, or 0 for %d)", c.Level, DefaultGzipLevel)
		}
	case "":
		return fmt.Errorf("algorithm: missing (%q or %q)", Zstd, Gzip)
	default:
		return fmt.Errorf("algorithm: %q is not %q or %q", c.Algorithm, Zstd, Gzip)
	}
	return nil
}

// LevelInEffect is the level c compresses at: its own, or its
// algorithm's default.
func (c *Compression) LevelInEffect() int {
	switch {
	case c.Level != 0:
		return c.Level
	case c.Algorithm == Zstd:
		return DefaultZstdLevel
	default:
		return DefaultGzipLevel
	}
}

// newCompressor returns a writer compressing into w as c says; closing it
// ends the compressed stream (it does not close w). The settings are part
// of the format: changing them changes compressed layers' digests.
func newCompressor(w io.Writer, c *Compression) (io.WriteCloser, error) {
	switch c.Algorithm {
	case Zstd:
		// One encoder goroutine: concurrent block encoding may differ in
		// its output. A checksum of the content, as zstd's CLI writes. A
		// 2 MiB window, zstd's own at its default level (windowLog 21):
		// the library's 8 MiB default holds ~18 MiB per encoder, and a
		// push compresses as many layers at once as it uploads; 2 MiB
		// holds ~6 MiB and, on the Go source tree, costs 1 % in size.
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.LevelInEffect())),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
		)
	case Gzip:
		// No name, no comment, no extra field, OS 255 ("unknown"), and a
		// modification time of 0 ("none"): klauspost's writer would write
		// the zero time.Time's Unix seconds, wrapped to 32 bits, instead.
		zw, err := gzip.NewWriterLevel(w, c.LevelInEffect())
		if err != nil {
			return nil, err
		}
		zw.ModTime = time.Unix(0, 0)
		return zw, nil
	}
	return nil, fmt.Errorf("compression: unknown algorithm %q", c.Algorithm)
}
