package layering

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"time"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/description"
)

// MaxImageLayers is the most layers an image may have: overlayfs stacks
// at most 128 lower directories, and a container needs one more. An image
// description with more is refused too.
const MaxImageLayers = description.MaxLayers

// ErrTooManyLayers is wrapped by the error for an image over MaxImageLayers.
var ErrTooManyLayers = description.ErrTooManyLayers

// Input is what Split splits.
type Input struct {
	// Graph holds the closure of Deps and CopyToRoot (and may hold more).
	Graph *closure.Graph
	// Deps are placed at their store paths, with their closures.
	Deps []string
	// CopyToRoot paths have their contents placed at "/"; their closures
	// go under /nix/store.
	CopyToRoot []string
	// Explicit are the layers of already-built layer files, flattened in
	// list order, each file's layers bottom first.
	Explicit []description.Layer
	// MaxLayers is the budget of computed layers, at least 1.
	MaxLayers int
	// Perms are added to the computed layers they concern.
	Perms []layers.Perm
	// MTime is the mtime of computed layers; zero means
	// layers.DefaultMTime.
	MTime time.Time
}

// Layer is one layer of the result.
type Layer struct {
	// Spec is what the layer holds.
	Spec layers.Spec
	// Source is the explicit layer this one comes from; nil for a
	// computed layer.
	Source *description.Layer
	// Changed is set for an explicit layer that lost paths to an earlier
	// one: its Spec differs from Source and must be hashed again.
	Changed bool
}

// NeedsHash reports whether the layer's digest is unknown: a computed
// layer, or an explicit one that changed.
func (l Layer) NeedsHash() bool { return l.Source == nil || l.Changed }

type claim struct{ path, rewrite string }

// Split splits in into layers, bottom first, following the rules of the
// package documentation.
func Split(in Input) ([]Layer, error) {
	if in.MaxLayers < 1 {
		return nil, fmt.Errorf("maxLayers: %d, must be at least 1", in.MaxLayers)
	}
	if in.Graph == nil {
		return nil, fmt.Errorf("closure graph: missing")
	}
	mtime := in.MTime
	if mtime.IsZero() {
		mtime = layers.DefaultMTime
	}

	claimed := map[claim]bool{}
	out := explicitLayers(in.Explicit, claimed)

	computed, err := computedLayers(in, claimed, mtime)
	if err != nil {
		return nil, err
	}
	out = append(out, computed...)
	if len(out) > MaxImageLayers {
		return nil, fmt.Errorf("image would have %d layers (%d already built, %d computed), more than the %d an overlay filesystem can stack: %w",
			len(out), len(out)-len(computed), len(computed), MaxImageLayers, ErrTooManyLayers)
	}
	return out, nil
}

// explicitLayers dedupes the explicit layers and removes paths claimed by
// an earlier one, recording every kept path in claimed.
func explicitLayers(explicit []description.Layer, claimed map[claim]bool) []Layer {
	var out []Layer
	seen := map[string]bool{}
	for i := range explicit {
		src := &explicit[i]
		if seen[src.Digest.String()] {
			continue
		}
		seen[src.Digest.String()] = true
		var kept []layers.Path
		for _, p := range src.Paths {
			c := claim{p.Path, p.Rewrite}
			if claimed[c] {
				continue
			}
			claimed[c] = true
			kept = append(kept, p)
		}
		if len(kept) == 0 {
			continue
		}
		l := Layer{Spec: src.Spec, Source: src}
		if len(kept) != len(src.Paths) {
			l.Changed = true
			l.Spec.Paths = kept
			l.Spec.Perms = permsFor(src.Perms, kept)
		}
		out = append(out, l)
	}
	return out
}

func computedLayers(in Input, claimed map[claim]bool, mtime time.Time) ([]Layer, error) {
	g := in.Graph
	deps := map[string]bool{}
	for i, d := range in.Deps {
		if !g.Has(d) {
			return nil, fmt.Errorf("deps[%d]: %s is %w", i, d, closure.ErrNotInGraph)
		}
		deps[d] = true
	}
	var toRoot []string
	seenRoot := map[string]bool{}
	for i, c := range in.CopyToRoot {
		if !g.Has(c) {
			return nil, fmt.Errorf("copyToRoot[%d]: %s is %w", i, c, closure.ErrNotInGraph)
		}
		if !seenRoot[c] {
			seenRoot[c] = true
			toRoot = append(toRoot, c)
		}
	}
	all, err := g.Closure(append(slices.Clone(in.Deps), toRoot...)...)
	if err != nil {
		return nil, err
	}
	parents := g.Referrers(all)

	// Paths placed at their store path: the whole closure, except a
	// copyToRoot path nothing refers to and deps does not list.
	var store []string
	for _, p := range all {
		if seenRoot[p] && !deps[p] && len(parents[p]) == 0 {
			continue
		}
		if claimed[claim{p, ""}] {
			continue
		}
		store = append(store, p)
	}
	pop := popularity(all, parents)
	sort.Slice(store, func(i, j int) bool {
		if pop[store[i]] != pop[store[j]] {
			return pop[store[i]] > pop[store[j]]
		}
		return store[i] < store[j]
	})

	entry := func(p, rewrite string) layers.Path {
		n, _ := g.Node(p)
		return layers.Path{Path: p, NarHash: n.NarHash, NarSize: n.NarSize, Rewrite: rewrite}
	}
	var groups [][]layers.Path
	own := min(in.MaxLayers-1, len(store))
	for _, p := range store[:own] {
		groups = append(groups, []layers.Path{entry(p, "")})
	}
	if rest := store[own:]; len(rest) > 0 {
		shared := make([]layers.Path, 0, len(rest))
		for _, p := range rest {
			shared = append(shared, entry(p, ""))
		}
		sort.Slice(shared, func(i, j int) bool { return shared[i].Path < shared[j].Path })
		groups = append(groups, shared)
	}
	var rooted []layers.Path
	for _, c := range toRoot {
		if !claimed[claim{c, "/"}] {
			rooted = append(rooted, entry(c, "/"))
		}
	}
	if len(rooted) > 0 {
		if len(groups) == 0 {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], rooted...)
	}

	out := make([]Layer, 0, len(groups))
	for _, paths := range groups {
		out = append(out, Layer{Spec: layers.Spec{Paths: paths, Perms: permsFor(in.Perms, paths), MTime: mtime}})
	}
	return out, nil
}

// popularity counts, for each path of all, the paths of all that depend on
// it transitively. parents maps a path to its direct referrers within all.
//
// Closures are acyclic once self-references are dropped, so the ancestors
// of a path are the union of its parents and their ancestors: one bitset
// per path, filled parents first, costs a few words per edge. A graph with
// a cycle (not one Nix writes) falls back to a search from every path.
func popularity(all []string, parents map[string][]string) map[string]int {
	n := len(all)
	idx := make(map[string]int, n)
	for i, p := range all {
		idx[p] = i
	}
	par := make([][]int, n)
	children := make([][]int, n)
	indeg := make([]int, n) // referrers not yet visited
	for i, p := range all {
		for _, q := range parents[p] {
			j := idx[q]
			par[i] = append(par[i], j)
			children[j] = append(children[j], i)
		}
		indeg[i] = len(par[i])
	}
	order := make([]int, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, c := range children[order[k]] {
			if indeg[c]--; indeg[c] == 0 {
				order = append(order, c)
			}
		}
	}
	count := make([]int, n)
	if len(order) == n {
		words := (n + 63) / 64
		anc := make([]uint64, n*words)
		for _, v := range order {
			av := anc[v*words : (v+1)*words]
			for _, p := range par[v] {
				ap := anc[p*words : (p+1)*words]
				for w := range av {
					av[w] |= ap[w]
				}
				av[p/64] |= 1 << (p % 64)
			}
			for _, w := range av {
				count[v] += bits.OnesCount64(w)
			}
		}
	} else {
		seen := make([]int, n) // the search that last saw a path, plus one
		var stack []int
		for v := range n {
			seen[v] = v + 1
			stack = append(stack[:0], par[v]...)
			for len(stack) > 0 {
				q := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if seen[q] == v+1 {
					continue
				}
				seen[q] = v + 1
				count[v]++
				stack = append(stack, par[q]...)
			}
		}
	}
	pop := make(map[string]int, n)
	for i, p := range all {
		pop[p] = count[i]
	}
	return pop
}

// permsFor keeps the rules that concern a layer holding paths: those
// without a path and those whose path is in the layer.
func permsFor(perms []layers.Perm, paths []layers.Path) []layers.Perm {
	in := map[string]bool{}
	for _, p := range paths {
		in[p.Path] = true
	}
	var out []layers.Perm
	for _, r := range perms {
		if r.Path == "" || in[r.Path] {
			out = append(out, r)
		}
	}
	return out
}
