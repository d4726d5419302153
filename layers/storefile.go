package layers

import (
	"fmt"
	"io"
	"strings"
)

// ReadStoreFile reads the store path p, which must be a regular file of at
// most max bytes (an SBOM a build wrote as one of its outputs). p is
// checked to be exactly a store path, and opened beneath the store
// directory without following a symlink: a store path that is a symlink,
// a directory or anything else but a regular file is an error naming it.
func ReadStoreFile(p string, max int64, opts ...Option) ([]byte, error) {
	if err := ValidateStorePath(p); err != nil {
		return nil, err
	}
	o := makeOptions(opts)
	store, err := openStoreDir(o.root)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	f, info, err := store.openFile(strings.TrimPrefix(p, StoreDir+"/"))
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", p, err)
	}
	defer f.Close()
	if info.size > max {
		return nil, fmt.Errorf("store path %s: %d bytes, more than the %d allowed", p, info.size, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", p, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("store path %s: more than the %d bytes allowed", p, max)
	}
	return b, nil
}
