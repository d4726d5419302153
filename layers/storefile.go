package layers

import (
	"errors"
	"fmt"
	"io"
	"path"
)

// ReadStoreFile reads the store path p, which must be exactly a store path
// (ValidateStorePath) that is a regular file of at most limit bytes: an
// image description that an index description names, say. It is opened
// beneath the store directory like every store path nixpush reads, without
// following any symlink: a store path that is a symlink, a directory or a
// device is an error naming it.
func ReadStoreFile(p string, limit int64, opts ...Option) ([]byte, error) {
	if err := ValidateStorePath(p); err != nil {
		return nil, err
	}
	o := makeOptions(opts)
	store, err := openStoreDir(o.root)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	f, info, err := store.openFile(path.Base(p))
	var nr *notRegularError
	switch {
	case errors.As(err, &nr):
		return nil, fmt.Errorf("store path %s: not a regular file (%s)", p, kind(nr.mode))
	case err != nil:
		return nil, fmt.Errorf("store path %s: %w", p, err)
	}
	defer f.Close()
	if info.size > limit {
		return nil, fmt.Errorf("store path %s: larger than %d bytes", p, limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading store path %s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("store path %s: larger than %d bytes", p, limit)
	}
	return b, nil
}
