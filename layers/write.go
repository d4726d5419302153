package layers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Metadata of every entry is set here, never copied from the host: see the
// package documentation for the rules and why.
const (
	modeFile      = 0o444 // regular file, as the store holds it
	modeExec      = 0o555 // regular file with the owner's execute bit on the host
	modeDir       = 0o555 // directory that some store path provides
	modeSynthetic = 0o755 // directory that only leads to a mount (/nix, /nix/store)
	modeSymlink   = 0o777

	copyBufferSize = 1 << 20
)

// Write streams the layer's deterministic tar to w. It reads the store as it
// goes and holds no file's contents in memory beyond one copy buffer.
func Write(ctx context.Context, w io.Writer, s Spec, opts ...Option) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("layer spec: %w", err)
	}
	o := makeOptions(opts)
	m, err := newMounts(s, o.root)
	if err != nil {
		return err
	}
	defer m.store.Close()
	rules := make([]rule, len(s.Perms))
	for i, p := range s.Perms {
		if rules[i], err = p.compile(); err != nil {
			return fmt.Errorf("perms[%d].%w", i, err)
		}
	}
	mtime := s.MTime
	if mtime.IsZero() {
		mtime = DefaultMTime
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := &treeWriter{
		ctx:   ctx,
		tw:    tar.NewWriter(bw),
		m:     m,
		rules: rules,
		mtime: mtime.UTC().Truncate(time.Second),
		buf:   make([]byte, copyBufferSize),
	}
	if err := tw.walk(m.rootNode()); err != nil {
		return err
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("finishing tar: %w", err)
	}
	return bw.Flush()
}

type treeWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	m     *mounts
	rules []rule
	mtime time.Time
	buf   []byte
}

// walk writes the entries below dir, whose origins' directories it opens
// for the time it is inside dir.
func (w *treeWriter) walk(dir *node) error {
	if err := dir.open(); err != nil {
		return err
	}
	defer dir.close()
	children, err := w.m.children(dir)
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := w.entry(c); err != nil {
			return err
		}
		if c.dir {
			if err := w.walk(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *treeWriter) entry(n *node) error {
	name := strings.TrimPrefix(n.name, "/")
	if !validEntryName(name) {
		// Names come from validated store paths, rewrites and directory
		// listings, so this never happens; it is checked all the same.
		return fmt.Errorf("refusing tar entry name %q", name)
	}
	hdr := &tar.Header{
		Name:    name,
		ModTime: w.mtime,
		// Uid, Gid 0 and empty Uname, Gname: root, whatever owns the store.
	}
	var src *os.File
	var srcStore string
	if n.dir {
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		hdr.Mode = modeSynthetic
		for _, o := range n.origins {
			if o.parent != nil {
				hdr.Mode = modeDir
			}
		}
	} else {
		o, err := single(n)
		if err != nil {
			return err
		}
		switch t := o.info.mode.Type(); {
		case t == 0:
			// The file is opened before its header is written, and the
			// header describes the open file: what is copied is what the
			// header says, whatever happened to the tree since it was
			// listed. Hardlinks are read as the files they are, so store
			// optimisation never changes a layer's bytes.
			f, info, err := o.parent.openFile(o.name)
			if err != nil {
				return fmt.Errorf("opening %s of store path %s: %w", n.name, o.store, err)
			}
			defer f.Close()
			hdr.Typeflag = tar.TypeReg
			hdr.Size = info.size
			hdr.Mode = modeFile
			if info.mode.Perm()&0o100 != 0 {
				hdr.Mode = modeExec
			}
			src, srcStore = f, o.store
		case t&fs.ModeSymlink != 0:
			target, err := o.parent.readlink(o.name)
			if err != nil {
				return fmt.Errorf("reading symlink %s of store path %s: %w", n.name, o.store, err)
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
			hdr.Mode = modeSymlink
		default:
			return fmt.Errorf("%s in store path %s is %s; layers hold only files, directories and symlinks", n.name, o.store, kind(o.info.mode))
		}
	}
	w.applyRules(n, hdr)
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", n.name, err)
	}
	if src != nil {
		return w.copyFile(n, src, srcStore, hdr.Size)
	}
	return nil
}

// validEntryName says whether name is relative and has no empty, "." or
// ".." component.
func validEntryName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") {
		return false
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

func (w *treeWriter) copyFile(n *node, f *os.File, store string, size int64) error {
	// The io.Reader wrapper keeps io.CopyBuffer on the large buffer instead
	// of *os.File's WriteTo. Reading stops at size: a file that grew since
	// it was opened cannot run past its header.
	copied, err := io.CopyBuffer(w.tw, struct{ io.Reader }{io.LimitReader(f, size)}, w.buf)
	if err == nil && copied != size {
		err = fmt.Errorf("file is %d bytes, expected %d", copied, size)
	}
	if err != nil {
		return fmt.Errorf("copying %s of store path %s (did it change while being read?): %w", n.name, store, err)
	}
	return nil
}

func (w *treeWriter) applyRules(n *node, hdr *tar.Header) {
	for _, r := range w.rules {
		if r.Path != "" && !fromStorePath(n, r.Path) {
			continue
		}
		if !r.re.MatchString(n.name) {
			continue
		}
		if r.mode >= 0 {
			hdr.Mode = r.mode
		}
		if r.UID != nil {
			hdr.Uid = *r.UID
		}
		if r.GID != nil {
			hdr.Gid = *r.GID
		}
		if r.Uname != nil {
			hdr.Uname = *r.Uname
		}
		if r.Gname != nil {
			hdr.Gname = *r.Gname
		}
	}
}

func fromStorePath(n *node, store string) bool {
	for _, o := range n.origins {
		if o.store == store {
			return true
		}
	}
	return false
}

// single returns the one origin of a non-directory entry. Several origins
// are allowed only when they give identical content (two environments
// linking the same file); anything else is an error naming both.
func single(n *node) (origin, error) {
	first := n.origins[0]
	for _, o := range n.origins[1:] {
		same, err := sameContent(first, o)
		if err != nil {
			return origin{}, fmt.Errorf("comparing %s from store paths %s and %s: %w", n.name, first.store, o.store, err)
		}
		if !same {
			return origin{}, fmt.Errorf("%s: store path %s gives %s and store path %s gives %s; two sources may not put different content at one path",
				n.name, first.store, describe(first), o.store, describe(o))
		}
	}
	return first, nil
}

func describe(o origin) string {
	if o.parent == nil {
		return "a directory"
	}
	if o.info.mode.Type()&fs.ModeSymlink != 0 {
		if t, err := o.parent.readlink(o.name); err == nil {
			return "a symlink to " + t
		}
	}
	return kind(o.info.mode)
}

func sameContent(a, b origin) (bool, error) {
	if a.parent == nil || b.parent == nil {
		return false, nil
	}
	ta, tb := a.info.mode.Type(), b.info.mode.Type()
	if ta != tb {
		return false, nil
	}
	switch {
	case ta&fs.ModeSymlink != 0:
		la, err := a.parent.readlink(a.name)
		if err != nil {
			return false, err
		}
		lb, err := b.parent.readlink(b.name)
		return err == nil && la == lb, err
	case ta == 0:
		if a.info.size != b.info.size || (a.info.mode^b.info.mode)&0o100 != 0 {
			return false, nil
		}
		return sameBytes(a, b)
	default:
		return false, nil
	}
}

func sameBytes(a, b origin) (bool, error) {
	fa, _, err := a.parent.openFile(a.name)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, _, err := b.parent.openFile(b.name)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == ea, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}
