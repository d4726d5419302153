package layers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Everything below a store path is reached through open directory file
// descriptors, one name at a time, never through a host path: each name is
// a single component (no "/", ".", ".."), opened with openat2's
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS relative to its parent's descriptor,
// so no symlink is ever followed and nothing outside the store path can be
// reached, even if the tree changes while it is read (a directory swapped
// for a symlink is then read as that symlink). Where the kernel lacks
// openat2 (before Linux 5.6), openat with O_NOFOLLOW does the same for a
// single component. Only the store directory itself (root + /nix/store) is
// opened by path: it is the host's, not the description's.

// dirFD is an open directory.
type dirFD struct {
	f    *os.File
	path string // host path, for messages only; never opened again
}

// openHook, when set (by tests), sees every file and directory opened
// beneath the store, so a test can assert where each one really is.
var openHook func(f *os.File)

// openStoreDir opens root's store directory.
func openStoreDir(root string) (*dirFD, error) {
	p := root + StoreDir
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the store directory: %w", err)
	}
	return &dirFD{f: f, path: p}, nil
}

func (d *dirFD) Close() error { return d.f.Close() }

// hostPath is the host path of name in d, for messages.
func (d *dirFD) hostPath(name string) string { return d.path + "/" + name }

// checkName refuses anything but one plain path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%q is not a single file name", name)
	}
	return nil
}

// entryInfo is what an entry is, from lstat (the listing) or fstat (an
// open file); a symlink is never followed.
type entryInfo struct {
	mode fs.FileMode // type and permission bits
	size int64
}

func (e entryInfo) IsDir() bool { return e.mode.IsDir() }

func infoOf(st *unix.Stat_t) entryInfo {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	default:
		m |= fs.ModeIrregular
	}
	return entryInfo{mode: m, size: st.Size}
}

// lstat describes name in d without following it.
func (d *dirFD) lstat(name string) (entryInfo, error) {
	if err := checkName(name); err != nil {
		return entryInfo{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.f.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryInfo{}, &fs.PathError{Op: "lstat", Path: d.hostPath(name), Err: err}
	}
	return infoOf(&st), nil
}

// readlink reads the symlink name in d.
func (d *dirFD) readlink(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(d.f.Fd()), name, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: d.hostPath(name), Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// names lists d's entries, sorted. It reads the directory once.
func (d *dirFD) names() ([]string, error) {
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", d.path, err)
	}
	sort.Strings(names)
	return names, nil
}

// openDir opens the directory name in d; a symlink is an error.
func (d *dirFD) openDir(name string) (*dirFD, error) {
	f, err := d.open(name, unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &dirFD{f: f, path: d.hostPath(name)}, nil
}

// openFile opens the regular file name in d and describes the open file;
// anything else, a symlink included, is an error (a *notRegularError for
// what is not a regular file). It opens without blocking, so that a FIFO
// is refused instead of waited on.
func (d *dirFD) openFile(name string) (*os.File, entryInfo, error) {
	f, err := d.open(name, unix.O_NONBLOCK)
	if err != nil {
		return nil, entryInfo{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, entryInfo{}, &fs.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	info := infoOf(&st)
	if !info.mode.IsRegular() {
		f.Close()
		return nil, entryInfo{}, &notRegularError{name: f.Name(), mode: info.mode}
	}
	return f, info, nil
}

// notRegularError is openFile's error for what is not a regular file.
type notRegularError struct {
	name string
	mode fs.FileMode
}

func (e *notRegularError) Error() string {
	return fmt.Sprintf("%s is %s now, not a regular file", e.name, kind(e.mode))
}

// ErrSymlink is wrapped by the error for a path that was to be opened as a
// file or directory but is a symlink (it changed since it was listed).
var ErrSymlink = errors.New("is a symlink; nixpush never follows one")

func (d *dirFD) open(name string, flags int) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	flags |= unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	fd, err := openBeneath(int(d.f.Fd()), name, flags)
	if err != nil {
		// O_NOFOLLOW answers ELOOP for a symlink, or ENOTDIR together
		// with O_DIRECTORY: say which it is.
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			if info, lerr := d.lstat(name); lerr == nil && info.mode.Type()&fs.ModeSymlink != 0 {
				err = ErrSymlink
			}
		}
		return nil, &fs.PathError{Op: "open", Path: d.hostPath(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.hostPath(name))
	if openHook != nil {
		openHook(f)
	}
	return f, nil
}

var openat2 struct {
	sync.Once
	missing bool
}

// openBeneath opens the single component name relative to dirfd, following
// no symlink and never leaving dirfd.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	openat2.Do(func() {
		fd, err := unix.Openat2(dirfd, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY})
		if err == nil {
			unix.Close(fd)
		}
		openat2.missing = errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)
	})
	for try := 0; ; try++ {
		var fd int
		var err error
		if openat2.missing {
			fd, err = unix.Openat(dirfd, name, flags, 0)
		} else {
			fd, err = unix.Openat2(dirfd, name, &unix.OpenHow{
				Flags:   uint64(flags),
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
			})
		}
		if (errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN)) && try < 16 {
			continue // openat2 asks to retry when a rename raced the lookup
		}
		return fd, err
	}
}
