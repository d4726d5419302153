package closure

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/layers"
)

// Node is one store path of a closure graph, as Nix reports it.
type Node struct {
	Path string `json:"path"`
	// NarHash is "sha256:<nix base32>".
	NarHash     string `json:"narHash"`
	NarSize     uint64 `json:"narSize"`
	ClosureSize uint64 `json:"closureSize"`
	// References are the store paths this path refers to, sorted, without
	// the path itself.
	References []string `json:"references"`
	// CA is the content address of a content-addressed path, if any.
	CA string `json:"ca,omitempty"`
	// SelfReference is set when the path refers to itself (Nix lists it
	// in its own references; References leaves it out).
	SelfReference bool `json:"-"`
}

// Graph is a validated closure graph: a set of store paths and the
// references between them, all within the set.
type Graph struct {
	nodes map[string]*Node
	paths []string // sorted bytewise
}

// ErrNotInGraph is wrapped by errors about a store path the graph lacks.
var ErrNotInGraph = errors.New("not in the closure graph")

// Parse decodes the JSON array Nix writes for one exportReferencesGraph
// entry and validates it.
func Parse(b []byte) (*Graph, error) {
	var nodes []Node
	if err := jsonfield.Strict(b, &nodes); err != nil {
		return nil, fmt.Errorf("closure graph: %w", err) // "[3].narSize: expected …"
	}
	if nodes == nil && !bytes.Equal(bytes.TrimSpace(b), []byte("[]")) {
		return nil, fmt.Errorf("closure graph: expected a JSON array, got null")
	}
	return New(nodes)
}

// New validates nodes and builds a Graph from them. Self-references are
// dropped; the nodes are copied.
func New(nodes []Node) (*Graph, error) {
	g := &Graph{nodes: make(map[string]*Node, len(nodes))}
	for i := range nodes {
		n := nodes[i]
		if err := layers.ValidateStorePath(n.Path); err != nil {
			return nil, fmt.Errorf("closure graph: [%d].path: %w", i, err)
		}
		if _, dup := g.nodes[n.Path]; dup {
			return nil, fmt.Errorf("closure graph: %s: listed twice", n.Path)
		}
		if n.NarHash == "" {
			return nil, fmt.Errorf("closure graph: %s: narHash: missing", n.Path)
		}
		if _, err := nixhash.ParseAny(n.NarHash, nil); err != nil {
			return nil, fmt.Errorf("closure graph: %s: narHash %q: %w", n.Path, n.NarHash, err)
		}
		refs := make([]string, 0, len(n.References))
		for _, r := range n.References {
			if r == n.Path {
				n.SelfReference = true // a layer has no use for it; a Nix database has
				continue
			}
			refs = append(refs, r)
		}
		sort.Strings(refs)
		refs = slices.Compact(refs)
		n.References = refs
		g.nodes[n.Path] = &n
		g.paths = append(g.paths, n.Path)
	}
	for _, p := range g.paths {
		for _, r := range g.nodes[p].References {
			if _, ok := g.nodes[r]; !ok {
				if err := layers.ValidateStorePath(r); err != nil {
					return nil, fmt.Errorf("closure graph: %s: references: %w", p, err)
				}
				return nil, fmt.Errorf("closure graph: %s: references %s, which is %w", p, r, ErrNotInGraph)
			}
		}
	}
	sort.Strings(g.paths)
	return g, nil
}

// Len is the number of store paths in the graph.
func (g *Graph) Len() int { return len(g.paths) }

// Paths returns every store path of the graph, sorted bytewise.
func (g *Graph) Paths() []string { return slices.Clone(g.paths) }

// Has reports whether p is in the graph.
func (g *Graph) Has(p string) bool { _, ok := g.nodes[p]; return ok }

// Node returns the node of p.
func (g *Graph) Node(p string) (Node, bool) {
	n, ok := g.nodes[p]
	if !ok {
		return Node{}, false
	}
	c := *n
	c.References = slices.Clone(n.References)
	return c, true
}

// References returns the store paths p refers to, sorted, without p.
func (g *Graph) References(p string) []string {
	n, ok := g.nodes[p]
	if !ok {
		return nil
	}
	return slices.Clone(n.References)
}

// Closure returns the roots and every path they refer to, transitively,
// sorted bytewise. A root the graph lacks is an error wrapping
// ErrNotInGraph.
func (g *Graph) Closure(roots ...string) ([]string, error) {
	seen := map[string]bool{}
	stack := make([]string, 0, len(roots))
	for _, r := range roots {
		if _, ok := g.nodes[r]; !ok {
			return nil, fmt.Errorf("%s is %w", r, ErrNotInGraph)
		}
		stack = append(stack, r)
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack, g.nodes[p].References...)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Referrers returns, for each path of within, the paths of within that
// refer to it directly. Paths outside within are ignored.
func (g *Graph) Referrers(within []string) map[string][]string {
	in := make(map[string]bool, len(within))
	for _, p := range within {
		in[p] = true
	}
	parents := make(map[string][]string, len(within))
	for _, p := range within {
		n, ok := g.nodes[p]
		if !ok {
			continue
		}
		for _, r := range n.References {
			if in[r] {
				parents[r] = append(parents[r], p)
			}
		}
	}
	return parents
}
