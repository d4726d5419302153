package layers

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// Option configures how a layer is read from the store.
type Option func(*options)

type options struct {
	root string // host directory that stands for "/" when reading store paths
}

func makeOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRoot reads store paths below dir instead of "/": /nix/store/x is read
// from dir/nix/store/x. Image paths are unchanged. Tests use it for fixture
// stores.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// Write streams the layer's deterministic tar to w.
func Write(ctx context.Context, w io.Writer, s Spec, opts ...Option) error {
	return errInProgress
}

// Digest streams the layer once and returns its sha256 digest and size.
func Digest(ctx context.Context, s Spec, opts ...Option) (digest.Digest, int64, error) {
	return "", 0, errInProgress
}

// Open streams the layer through a pipe. When the stream ends, its digest
// and size are checked against want and size: on a difference the reader
// returns a *MismatchError naming the store paths whose NAR hash changed,
// instead of io.EOF.
func Open(ctx context.Context, s Spec, want digest.Digest, size int64, opts ...Option) io.ReadCloser {
	return nil
}

// MismatchError says a layer's bytes no longer hash to what was recorded.
type MismatchError struct {
	Want, Got digest.Digest
	WantSize, GotSize int64
	// Changed are the paths whose NAR hash differs from the recorded one.
	Changed []Path
}
