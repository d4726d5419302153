package description

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/nixpush/nixpush/layers"
)

// LayerError is the failure of one layer of an image description, by
// position: reading it from the store, or its bytes no longer matching the
// description (Err is then a *layers.MismatchError, naming the store paths
// that changed). It is the one layer error of nixpush: verify, the nix:
// transport and the registry engine all return it.
type LayerError struct {
	Index int
	Layer *Layer
	Err   error
}

func (e *LayerError) Error() string {
	var mm *layers.MismatchError
	if errors.As(e.Err, &mm) {
		// The mismatch names what changed; this names the layer.
		return fmt.Sprintf("layers[%d] (%s) does not match its description: %v", e.Index, e.Layer.Digest, e.Err)
	}
	return fmt.Sprintf("layers[%d] (%s): %v", e.Index, e.Layer.Digest, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// Verify re-streams every layer from the store and compares it with its
// recorded digest and size, several layers at once. It returns nil or the
// joined *LayerError of every layer that failed; a mismatch wraps a
// *layers.MismatchError naming the store paths whose NAR hash changed.
// done, if not nil, is called as each layer finishes.
func (img *Image) Verify(ctx context.Context, done func(i int, err error), opts ...layers.Option) error {
	errs := make([]error, len(img.Layers))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range img.Layers {
		l := &img.Layers[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := l.Verify(ctx, opts...)
			if err != nil {
				errs[i] = &LayerError{Index: i, Layer: l, Err: err}
			}
			if done != nil {
				mu.Lock()
				done(i, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Verify re-streams one layer (its tar from the store paths, or its blob
// file) and compares it with its description.
func (l *Layer) Verify(ctx context.Context, opts ...layers.Option) error {
	if l.Blob != nil {
		return layers.VerifyBlob(ctx, l.Blob.Path, l.Blob.File, l.Digest, l.Size, opts...)
	}
	return layers.Verify(ctx, l.Spec, l.Digest, l.Size, opts...)
}

// Open streams the layer's blob, hashing it as it goes (layers.Open, or
// layers.OpenBlob for a blob layer): its last Read returns a
// *layers.MismatchError or *layers.FileMismatchError instead of io.EOF
// when the bytes differ from the description.
func (l *Layer) Open(ctx context.Context, opts ...layers.Option) (io.ReadCloser, error) {
	if l.Blob != nil {
		return layers.OpenBlob(l.Blob.Path, l.Blob.File, l.Digest, l.Size, opts...)
	}
	return layers.Open(ctx, l.Spec, l.Digest, l.Size, opts...), nil
}

// Stream is Open for a destination that checks the digest itself (a
// registry): a blob layer's file is streamed as it is, checked for its
// size only, so that pushing a base image's layers costs no more than
// reading them (layers.StreamBlob; Verify names the file when the
// registry refuses the digest). A layer of store paths is hashed as by
// Open: its tar is made again, and a store path that changed must be
// named.
func (l *Layer) Stream(ctx context.Context, opts ...layers.Option) (io.ReadCloser, error) {
	if l.Blob != nil {
		return layers.StreamBlob(l.Blob.Path, l.Blob.File, l.Digest, l.Size, opts...)
	}
	return l.Open(ctx, opts...)
}
