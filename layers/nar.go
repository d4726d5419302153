package layers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// Changed returns the paths whose NAR serialisation no longer hashes to
// their recorded NarHash, or that are missing. Paths without a NarHash are
// not checked. It is the slow path, run only once a layer is known to
// differ, to name the store path at fault.
func Changed(ctx context.Context, paths []Path, opts ...Option) ([]Path, error) {
	o := makeOptions(opts)
	store, err := openStoreDir(o.root)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	var changed []Path
	seen := map[string]bool{}
	for _, p := range paths {
		if err := ValidateStorePath(p.Path); err != nil {
			return nil, err
		}
		if p.NarHash == "" || seen[p.Path] {
			continue
		}
		seen[p.Path] = true
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want, err := ParseNarHash(p.NarHash)
		if err != nil {
			return nil, fmt.Errorf("store path %s: narHash: %w", p.Path, err)
		}
		base := path.Base(p.Path)
		if _, err := store.lstat(base); errors.Is(err, fs.ErrNotExist) {
			changed = append(changed, p)
			continue
		}
		h := sha256.New()
		if err := dumpNAR(ctx, h, store, base); err != nil {
			return nil, fmt.Errorf("hashing store path %s: %w", p.Path, err)
		}
		if !bytes.Equal(h.Sum(nil), want) {
			changed = append(changed, p)
		}
	}
	return changed, nil
}

// dumpNAR writes the NAR serialisation of the entry name of dir to w, as
// nix-store --dump does, reading the tree the way Write does: one name at a
// time beneath dir, following no symlink.
func dumpNAR(ctx context.Context, w io.Writer, dir *dirFD, name string) error {
	nw, err := nar.NewWriter(w)
	if err != nil {
		return err
	}
	defer nw.Close()
	if err := dumpNode(ctx, nw, dir, name, "/"); err != nil {
		return err
	}
	return nw.Close()
}

func dumpNode(ctx context.Context, nw *nar.Writer, dir *dirFD, name, narPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := dir.lstat(name)
	if err != nil {
		return err
	}
	switch t := info.mode.Type(); {
	case t&fs.ModeSymlink != 0:
		target, err := dir.readlink(name)
		if err != nil {
			return err
		}
		return nw.WriteHeader(&nar.Header{Path: narPath, Type: nar.TypeSymlink, LinkTarget: target})
	case t == 0:
		f, info, err := dir.openFile(name)
		if err != nil {
			return err
		}
		defer f.Close()
		// Nix's notion of executable: the owner's execute bit.
		hdr := &nar.Header{Path: narPath, Type: nar.TypeRegular, Size: info.size, Executable: info.mode.Perm()&0o100 != 0}
		if err := nw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(nw, io.LimitReader(f, info.size))
		if err == nil && n != info.size {
			err = fmt.Errorf("%s: read %d bytes, expected %d", f.Name(), n, info.size)
		}
		return err
	case t&fs.ModeDir != 0:
		if err := nw.WriteHeader(&nar.Header{Path: narPath, Type: nar.TypeDirectory}); err != nil {
			return err
		}
		sub, err := dir.openDir(name)
		if err != nil {
			return err
		}
		defer sub.Close()
		names, err := sub.names()
		if err != nil {
			return err
		}
		for _, child := range names {
			if err := dumpNode(ctx, nw, sub, child, path.Join(narPath, child)); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("%s is %s, which a NAR cannot hold", dir.hostPath(name), kind(info.mode))
	}
}

// ParseNarHash accepts Nix's spellings of a sha256 NAR hash
// (sha256:<base32>, sha256-<base64>, …) and returns its bytes.
func ParseNarHash(s string) ([]byte, error) {
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if h.Algo() != nixhash.SHA256 {
		return nil, fmt.Errorf("%q: want a sha256 hash, got %s", s, h.Algo())
	}
	return h.Digest(), nil
}
