package layers

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// A layer's file tree is the union of its sources, each mounted at an image
// directory, plus the directories that lead to them. The tree is walked
// directory by directory; nothing but one directory's listing per level is
// held in memory.

// origin is one place an image path's content comes from.
type origin struct {
	host  string // file on the host; "" for a synthesised directory
	store string // store path the entry belongs to; "" when synthesised
	info  fs.FileInfo
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

// mounts maps image directories to the sources placed there.
type mounts struct {
	at        map[string][]origin // image path → sources mounted there
	synthetic map[string]bool     // directories that exist only to lead to mounts
}

func newMounts(s Spec, root string) (*mounts, error) {
	m := &mounts{at: map[string][]origin{}, synthetic: map[string]bool{}}
	m.addParents(StoreDir + "/x") // nix/ and nix/store/ are in every layer
	for _, p := range s.Paths {
		dest := p.Path
		if p.Rewrite != "" {
			dest = p.Rewrite
		}
		host := root + p.Path
		info, err := os.Lstat(host)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("store path %s is missing (looked for %s)", p.Path, host)
			}
			return nil, fmt.Errorf("store path %s: %w", p.Path, err)
		}
		if p.Rewrite != "" && !info.IsDir() {
			return nil, fmt.Errorf("store path %s: rewrite to %s needs a directory, found %s", p.Path, p.Rewrite, kind(info))
		}
		m.at[dest] = append(m.at[dest], origin{host: host, store: p.Path, info: info})
		m.addParents(dest)
	}
	return m, nil
}

func (m *mounts) addParents(p string) {
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		m.synthetic[d] = true
	}
}

// children lists the entries directly below the directory n, merged across
// its origins and the mounts below it, in walk order.
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
		if o.host == "" {
			continue
		}
		entries, err := os.ReadDir(o.host)
		if err != nil {
			return nil, fmt.Errorf("reading directory %s of store path %s: %w", o.host, o.store, err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("reading %s of store path %s: %w", path.Join(o.host, e.Name()), o.store, err)
			}
			add(path.Join(n.name, e.Name()), origin{host: path.Join(o.host, e.Name()), store: o.store, info: info})
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
			if o.host != "" && !o.info.IsDir() {
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
	return &node{name: "/", dir: true, origins: m.at["/"]}
}

// isMountPoint reports whether n's children need the mount table: only
// directories on the way to a mount do.
func (m *mounts) isMountPoint(n *node) bool {
	return n.name == "/" || m.synthetic[n.name] || len(m.at[n.name]) > 0
}

func kind(info fs.FileInfo) string {
	switch t := info.Mode().Type(); {
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
