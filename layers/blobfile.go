package layers

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ValidateBlobFile checks that file is a clean relative path of a file
// beneath a store path: no leading "/", no ".", ".." or empty component.
func ValidateBlobFile(file string) error {
	if file == "" {
		return fmt.Errorf("missing")
	}
	if !fs.ValidPath(file) || file == "." {
		return fmt.Errorf("%q is not a clean relative path inside the store path (no leading /, no . or .. and no empty component)", file)
	}
	return nil
}

// OpenFile opens the regular file file (a clean relative path) beneath the
// store path storePath the way layers are read: one component at a time,
// following no symlink (see Confinement). Anything but a regular file is
// an error. It returns the open file and its size.
func OpenFile(storePath, file string, opts ...Option) (*os.File, int64, error) {
	if err := ValidateStorePath(storePath); err != nil {
		return nil, 0, err
	}
	if err := ValidateBlobFile(file); err != nil {
		return nil, 0, fmt.Errorf("file: %w", err)
	}
	o := makeOptions(opts)
	store, err := openStoreDir(o.root)
	if err != nil {
		return nil, 0, err
	}
	defer store.Close()
	dir, err := store.openDir(path.Base(storePath))
	if err != nil {
		return nil, 0, err
	}
	parts := strings.Split(file, "/")
	for _, name := range parts[:len(parts)-1] {
		next, err := dir.openDir(name)
		dir.Close()
		if err != nil {
			return nil, 0, err
		}
		dir = next
	}
	defer dir.Close()
	f, info, err := dir.openFile(parts[len(parts)-1])
	if err != nil {
		return nil, 0, err
	}
	return f, info.size, nil
}

// FileMismatchError says a blob file in the store no longer hashes to the
// digest and size recorded for it.
type FileMismatchError struct {
	File              string // store path and file: /nix/store/…-base/blobs/sha256/…
	Want, Got         digest.Digest
	WantSize, GotSize int64
}

func (e *FileMismatchError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("%s is %d bytes, recorded %d (recorded digest %s)", e.File, e.GotSize, e.WantSize, e.Want)
	}
	return fmt.Sprintf("%s hashes to %s (%d bytes), recorded %s (%d bytes)", e.File, e.Got, e.GotSize, e.Want, e.WantSize)
}

// OpenBlob opens a blob file beneath a store path (OpenFile) for reading
// as it is, hashing its bytes as they pass: if they do not end with want
// and size, the last Read returns a *FileMismatchError instead of io.EOF,
// and a file longer than size stops as soon as it runs past it.
func OpenBlob(storePath, file string, want digest.Digest, size int64, opts ...Option) (io.ReadCloser, error) {
	return openBlob(storePath, file, want, size, true, opts)
}

// openBlob is OpenBlob, hashing only when hashed is set.
func openBlob(storePath, file string, want digest.Digest, size int64, hashed bool, opts []Option) (io.ReadCloser, error) {
	f, n, err := OpenFile(storePath, file, opts...)
	if err != nil {
		return nil, err
	}
	name := storePath + "/" + file
	if n != size {
		f.Close()
		return nil, &FileMismatchError{File: name, Want: want, WantSize: size, GotSize: n}
	}
	h := newCounter(0)
	if !hashed {
		h.Hash = nil
	}
	return &blobReader{f: f, name: name, want: want, size: size, h: h}, nil
}

// StreamBlob is OpenBlob without the hash, for a destination that checks
// the digest itself (a registry refuses a blob whose bytes are not its
// digest's): the file is read as it is, and the last Read returns a
// *FileMismatchError instead of io.EOF only when its size differs (it
// stops as soon as it runs past size). When the destination finds the
// digest wrong, VerifyBlob names the file.
func StreamBlob(storePath, file string, want digest.Digest, size int64, opts ...Option) (io.ReadCloser, error) {
	return openBlob(storePath, file, want, size, false, opts)
}

// VerifyBlob re-hashes a blob file and compares it with want and size.
func VerifyBlob(ctx context.Context, storePath, file string, want digest.Digest, size int64, opts ...Option) error {
	rc, err := OpenBlob(storePath, file, want, size, opts...)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := rc.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type blobReader struct {
	f    *os.File
	name string
	want digest.Digest
	size int64
	h    *counter
}

func (r *blobReader) Read(p []byte) (int, error) {
	if rest := r.size + 1 - r.h.n; int64(len(p)) > rest {
		p = p[:rest] // one byte past size is enough to know it is too long
	}
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if r.h.n > r.size {
		return 0, &FileMismatchError{File: r.name, Want: r.want, WantSize: r.size, GotSize: r.h.n}
	}
	if err == io.EOF {
		if r.h.Hash == nil {
			if r.h.n != r.size {
				return n, &FileMismatchError{File: r.name, Want: r.want, WantSize: r.size, GotSize: r.h.n}
			}
			return n, err
		}
		got := digest.NewDigestFromBytes(digest.SHA256, r.h.Sum(nil))
		if r.h.n != r.size || got != r.want {
			return n, &FileMismatchError{File: r.name, Want: r.want, Got: got, WantSize: r.size, GotSize: r.h.n}
		}
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", r.name, err)
	}
	return n, err
}

func (r *blobReader) Close() error { return r.f.Close() }
