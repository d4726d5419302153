package layers

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// A layer's file tree is the union of its sources, each mounted at an image
// directory, plus the directories that lead to them. The tree is walked
// directory by directory; nothing but one directory's listing per level is
// held in memory.

// origin is one place an image path's content comes from: the entry name
// in the open directory parent, or nothing for a synthesised directory.
type origin struct {
	parent *dirFD // nil for a synthesised directory
	name   string // entry name in parent
	store  string // store path the entry belongs to; "" when synthesised
	info   entryInfo
	dir    *dirFD // the directory itself, open while the walk is inside it
}

// host is the origin's host path, for messages.
func (o origin) host() string {
	if o.parent == nil {
		return ""
	}
	return o.parent.hostPath(o.name)
}

// node is one entry of the merged tree with every origin that provides it.
type node struct {
	name    string // image path, absolute, without trailing slash
	origins []origin
	dir     bool
}

// key sorts entries so that a depth-first walk writes archive names in
// bytewise order: a directory sorts as its name plus "/", as its
// descendants' names do.
func (n *node) key() string {
	base := path.Base(n.name)
	if n.dir {
		return base + "/"
	}
	return base
}

// open opens the directories of n's origins for the walk below n; close
// closes them again.
func (n *node) open() error {
	for i := range n.origins {
		o := &n.origins[i]
		if o.parent == nil {
			continue
		}
		d, err := o.parent.openDir(o.name)
		if err != nil {
			n.close()
			return fmt.Errorf("%s of store path %s: %w", n.name, o.store, err)
		}
		o.dir = d
	}
	return nil
}

func (n *node) close() {
	for i := range n.origins {
		if d := n.origins[i].dir; d != nil {
			d.Close()
			n.origins[i].dir = nil
		}
	}
}

// mounts maps image directories to the sources placed there.
type mounts struct {
	store     *dirFD              // the store directory, below which every source is
	at        map[string][]origin // image path → sources mounted there
	synthetic map[string]bool     // directories that exist only to lead to mounts
}

// newMounts opens the store directory below root and finds each of the
// Spec's store paths in it. The caller closes m.store.
func newMounts(s Spec, root string) (*mounts, error) {
	store, err := openStoreDir(root)
	if err != nil {
		return nil, err
	}
	m := &mounts{store: store, at: map[string][]origin{}, synthetic: map[string]bool{}}
	m.addParents(StoreDir + "/x") // nix/ and nix/store/ are in every layer
	for _, p := range s.Paths {
		dest := p.Path
		if p.Rewrite != "" {
			dest = p.Rewrite
		}
		// p.Path is exactly StoreDir/<hash>-<name> (Spec.Validate), so its
		// base is the one name to look up in the store directory.
		base := path.Base(p.Path)
		info, err := store.lstat(base)
		if err != nil {
			store.Close()
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("store path %s is missing (looked for %s)", p.Path, store.hostPath(base))
			}
			return nil, fmt.Errorf("store path %s: %w", p.Path, err)
		}
		if p.Rewrite != "" && !info.IsDir() {
			store.Close()
			return nil, fmt.Errorf("store path %s: rewrite to %s needs a directory, found %s", p.Path, p.Rewrite, kind(info.mode))
		}
		m.at[dest] = append(m.at[dest], origin{parent: store, name: base, store: p.Path, info: info})
		m.addParents(dest)
	}
	return m, nil
}

func (m *mounts) addParents(p string) {
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		m.synthetic[d] = true
	}
}

// children lists the entries directly below the directory n, whose
// origins are open, merged across its origins and the mounts below it, in
// walk order.
func (m *mounts) children(n *node) ([]*node, error) {
	byName := map[string]*node{}
	add := func(name string, o origin) {
		c := byName[name]
		if c == nil {
			c = &node{name: name}
			byName[name] = c
		}
		c.origins = append(c.origins, o)
	}
	for _, o := range n.origins {
		if o.dir == nil {
			continue
		}
		names, err := o.dir.names()
		if err != nil {
			return nil, fmt.Errorf("store path %s: %w", o.store, err)
		}
		for _, name := range names {
			info, err := o.dir.lstat(name)
			if err != nil {
				return nil, fmt.Errorf("store path %s: %w", o.store, err)
			}
			add(path.Join(n.name, name), origin{parent: o.dir, name: name, store: o.store, info: info})
		}
	}
	// Mounts and synthesised directories directly below n: only directories
	// on the way to a mount can have any, so others skip the scan.
	if !m.isMountPoint(n) {
		return sortNodes(byName), nil
	}
	for d := range m.synthetic {
		if path.Dir(d) == n.name && d != n.name {
			add(d, origin{})
		}
	}
	for d, srcs := range m.at {
		if path.Dir(d) == n.name && d != n.name {
			for _, o := range srcs {
				add(d, o)
			}
		}
	}
	return sortNodes(byName), nil
}

// sortNodes settles each child's kind and returns them in walk order.
func sortNodes(byName map[string]*node) []*node {
	out := make([]*node, 0, len(byName))
	for _, c := range byName {
		c.dir = true
		for _, o := range c.origins {
			if o.parent != nil && !o.info.IsDir() {
				c.dir = false
			}
		}
		sort.SliceStable(c.origins, func(i, j int) bool { return c.origins[i].store < c.origins[j].store })
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// rootNode is "/", with the sources mounted at "/" (copyToRoot) as origins.
func (m *mounts) rootNode() *node {
	return &node{name: "/", dir: true, origins: slices.Clone(m.at["/"])}
}

// isMountPoint reports whether n's children need the mount table: only
// directories on the way to a mount do.
func (m *mounts) isMountPoint(n *node) bool {
	return n.name == "/" || m.synthetic[n.name] || len(m.at[n.name]) > 0
}

func kind(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symlink"
	case t&fs.ModeDevice != 0:
		return "a device file"
	case t&fs.ModeNamedPipe != 0:
		return "a fifo"
	case t&fs.ModeSocket != 0:
		return "a socket"
	default:
		return "an unsupported file type (" + strings.TrimSpace(t.String()) + ")"
	}
}
