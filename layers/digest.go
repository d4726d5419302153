package layers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Sums is what a layer hashes to.
type Sums struct {
	// DiffID is the sha256 of the tar.
	DiffID digest.Digest
	// Digest and Size are those of the blob: the tar, or the compressed
	// tar when the Spec has Compression.
	Digest digest.Digest
	Size   int64
}

// Sum streams the layer once, through sha256 for the tar's digest and,
// when it is compressed, through the compressor into a second sha256 and a
// byte count for the blob's.
func Sum(ctx context.Context, s Spec, opts ...Option) (Sums, error) {
	tar := newCounter(0)
	blob := tar
	if s.Compression != nil {
		blob = newCounter(0)
	}
	if err := writeBlob(ctx, tar, blob, s, opts); err != nil {
		return Sums{}, err
	}
	return Sums{DiffID: tar.digest(), Digest: blob.digest(), Size: blob.n}, nil
}

// Digest streams the layer once and returns its blob's digest and size in
// bytes (the tar's, unless the Spec has Compression).
func Digest(ctx context.Context, s Spec, opts ...Option) (digest.Digest, int64, error) {
	sums, err := Sum(ctx, s, opts...)
	if err != nil {
		return "", 0, err
	}
	return sums.Digest, sums.Size, nil
}

// writeBlob writes the layer's tar to tar (which may be nil) and its blob
// to blob: the same writer for an uncompressed layer, the compressed tar
// otherwise.
func writeBlob(ctx context.Context, tar, blob io.Writer, s Spec, opts []Option) error {
	if s.Compression == nil {
		if tar != nil && tar != blob {
			blob = io.MultiWriter(tar, blob)
		}
		return Write(ctx, blob, s, opts...)
	}
	if err := s.Compression.Validate(); err != nil {
		return fmt.Errorf("layer spec: compression.%w", err)
	}
	zw, err := newCompressor(blob, s.Compression)
	if err != nil {
		return err
	}
	w := io.Writer(zw)
	if tar != nil {
		w = io.MultiWriter(tar, zw)
	}
	if err := Write(ctx, w, s, opts...); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finishing the %s stream: %w", s.Compression.Algorithm, err)
	}
	return nil
}

// Verify re-streams the layer and compares it with the recorded digest and
// size. On a difference it returns a *MismatchError.
func Verify(ctx context.Context, s Spec, want digest.Digest, size int64, opts ...Option) error {
	got, n, err := Digest(ctx, s, opts...)
	if err != nil {
		return err
	}
	if got == want && n == size {
		return nil
	}
	return mismatch(ctx, s, want, got, size, n, opts)
}

// Open streams the layer's blob through a pipe, for callers that want a
// reader.
// Its bytes are hashed as they pass: if they differ from want and size, the
// reader ends with a *MismatchError instead of io.EOF, and it stops as soon
// as the layer runs past size. Close stops the stream early.
func Open(ctx context.Context, s Spec, want digest.Digest, size int64, opts ...Option) io.ReadCloser {
	return open(ctx, s, want, size, true, opts)
}

// Stream is Open without the hash, for callers that hash what they read
// and refuse a stream whose digest is not want (containers/image's copy
// does): it still ends with a *MismatchError instead of io.EOF, stopping
// at once, when the layer runs past size or ends short of it. When the
// caller finds the digest wrong, Verify tells what changed.
func Stream(ctx context.Context, s Spec, want digest.Digest, size int64, opts ...Option) io.ReadCloser {
	return open(ctx, s, want, size, false, opts)
}

func open(ctx context.Context, s Spec, want digest.Digest, size int64, hashed bool, opts []Option) io.ReadCloser {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		h := newCounter(size)
		if !hashed {
			h.Hash = nil
		}
		err := writeBlob(ctx, nil, io.MultiWriter(h, pw), s, opts)
		switch {
		case h.tooLong:
			err = mismatch(ctx, s, want, "", size, h.n, opts)
		case err != nil:
		case hashed && (h.digest() != want || h.n != size):
			err = mismatch(ctx, s, want, h.digest(), size, h.n, opts)
		case h.n != size:
			err = mismatch(ctx, s, want, "", size, h.n, opts)
		}
		pw.CloseWithError(err) // nil closes with io.EOF
	}()
	return &pipeReader{PipeReader: pr, cancel: cancel}
}

type pipeReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *pipeReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}

// MismatchError says a layer's bytes no longer hash to what was recorded.
type MismatchError struct {
	Want, Got         digest.Digest // Got is empty when the size was wrong and the layer not hashed
	WantSize, GotSize int64         // GotSize is a lower bound when the layer ran past WantSize
	// Changed are the paths whose NAR hash differs from the recorded one,
	// or that are missing.
	Changed []Path
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	switch {
	case e.Got == "" && e.GotSize > e.WantSize:
		fmt.Fprintf(&b, "layer is larger than the recorded %d bytes (recorded digest %s)", e.WantSize, e.Want)
	case e.Got == "":
		fmt.Fprintf(&b, "layer is %d bytes, recorded %d (recorded digest %s)", e.GotSize, e.WantSize, e.Want)
	default:
		fmt.Fprintf(&b, "layer hashes to %s (%d bytes), recorded %s (%d bytes)", e.Got, e.GotSize, e.Want, e.WantSize)
	}
	if len(e.Changed) == 0 {
		b.WriteString("; no store path's NAR hash changed, so the description was edited or its layer options or nixpush's tar format differ from when it was built")
		return b.String()
	}
	b.WriteString("; store paths whose NAR hash changed since the build:")
	for _, p := range e.Changed {
		b.WriteString(" " + p.Path)
	}
	return b.String()
}

func mismatch(ctx context.Context, s Spec, want, got digest.Digest, wantSize, gotSize int64, opts []Option) error {
	changed, err := Changed(ctx, s.Paths, opts...)
	if err != nil {
		return fmt.Errorf("layer does not match its recorded digest %s, and finding the changed store path failed: %w", want, err)
	}
	return &MismatchError{Want: want, Got: got, WantSize: wantSize, GotSize: gotSize, Changed: changed}
}

var errTooLong = errors.New("layer longer than recorded")

// counter hashes (unless Hash is nil) and counts what is written; with a
// limit > 0 it fails once more than limit bytes arrive.
type counter struct {
	hash.Hash
	n, limit int64
	tooLong  bool // more than limit bytes arrived
}

func newCounter(limit int64) *counter { return &counter{Hash: sha256.New(), limit: limit} }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.limit > 0 && c.n > c.limit {
		c.tooLong = true
		return 0, errTooLong
	}
	if c.Hash == nil {
		return len(p), nil
	}
	return c.Hash.Write(p)
}

func (c *counter) digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, c.Sum(nil))
}
