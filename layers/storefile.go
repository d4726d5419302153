package layers

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
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
	name := strings.TrimPrefix(p, StoreDir+"/")
	// lstat first, and open without blocking: a FIFO or a device named by
	// an untrusted description must be refused, not waited on.
	if info, err := store.lstat(name); err != nil {
		return nil, fmt.Errorf("store path %s: %w", p, err)
	} else if !info.mode.IsRegular() {
		return nil, fmt.Errorf("store path %s is %s, not a regular file", p, kind(info.mode))
	}
	f, err := store.open(name, unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("store path %s: %w", p, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("store path %s: %w", p, err)
	}
	info := infoOf(&st)
	if !info.mode.IsRegular() {
		return nil, fmt.Errorf("store path %s is %s now, not a regular file", p, kind(info.mode))
	}
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
