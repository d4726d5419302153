package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/layering"
	"github.com/nixpush/nixpush/layers/nixdb"
)

// What an image holds beyond the plain closure: ignore, includeStorePaths
// and the Nix database (docs/nix-api.md, "Image contents").

// imagePlan is the layering of a buildImage call, before hashing.
// BuildImage and the Nix database builder share it, so that the database
// registers exactly the store paths of the image.
func imagePlan(a *Attrs, g *closure.Graph, from *base, o options) ([]layering.Layer, error) {
	deps := append([]string(nil), a.Deps...)
	var configRefs []string
	if a.ConfigRefs != "" {
		// The carrier holds the config's JSON; its references are the
		// store paths the config names. They belong in the image, the
		// carrier does not.
		if !g.Has(a.ConfigRefs) {
			return nil, fmt.Errorf("configRefs: %s is %w", a.ConfigRefs, closure.ErrNotInGraph)
		}
		configRefs = g.References(a.ConfigRefs)
		deps = append(deps, configRefs...)
	}
	g, err := ignoring(a, g, a.Deps, configRefs)
	if err != nil {
		return nil, err
	}
	return planLayers(a, g, deps, from, o)
}

// ignoring returns g without the store paths of a.Ignore and without
// every path that only they (directly or not) refer to: the closure is
// recomputed from the roots (deps, copyToRoot, the config's paths) never
// entering an ignored path. A root that is ignored is an error naming it.
func ignoring(a *Attrs, g *closure.Graph, deps, configRefs []string) (*closure.Graph, error) {
	if len(a.Ignore) == 0 {
		return g, nil
	}
	ignored := map[string]bool{}
	for i, p := range a.Ignore {
		if err := layers.ValidateStorePath(p); err != nil {
			return nil, fmt.Errorf("ignore[%d]: %w", i, err)
		}
		ignored[p] = true
	}
	for i, p := range a.CopyToRoot {
		if ignored[p] {
			return nil, fmt.Errorf("copyToRoot[%d]: %s is in ignore: a path cannot be both copied to / and ignored", i, p)
		}
	}
	for i, p := range deps {
		if ignored[p] {
			return nil, fmt.Errorf("deps[%d]: %s is in ignore: a path cannot be both a dependency and ignored", i, p)
		}
	}
	for _, p := range configRefs {
		if ignored[p] {
			return nil, fmt.Errorf("config: names %s, which is in ignore: the container would not find it", p)
		}
	}
	for i, r := range a.Perms {
		if r.Path != "" && ignored[r.Path] {
			return nil, fmt.Errorf("perms[%d].path: %s is in ignore", i, r.Path)
		}
	}
	// Walk from every path of g that is not ignored and that no path of g
	// refers to (the roots Nix exported the graph for), plus the explicit
	// roots, never entering an ignored path. Explicit layers' files may
	// be in the graph too; they are roots of their own and harmless.
	roots := slices.Concat(deps, a.CopyToRoot, configRefs)
	if a.ConfigRefs != "" {
		roots = append(roots, a.ConfigRefs)
	}
	referred := map[string]bool{}
	for _, p := range g.Paths() {
		for _, r := range g.References(p) {
			referred[r] = true
		}
	}
	for _, p := range g.Paths() {
		if !referred[p] && !ignored[p] {
			roots = append(roots, p)
		}
	}
	keep := map[string]bool{}
	stack := roots
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if keep[p] || ignored[p] || !g.Has(p) {
			continue
		}
		keep[p] = true
		stack = append(stack, g.References(p)...)
	}
	var nodes []closure.Node
	for _, p := range g.Paths() {
		if !keep[p] {
			continue
		}
		n, _ := g.Node(p)
		n.References = slices.DeleteFunc(n.References, func(r string) bool { return ignored[r] })
		nodes = append(nodes, n)
	}
	return closure.New(nodes)
}

// rootOnly keeps, of the computed layers, only the copyToRoot contents
// (includeStorePaths = false): a computed layer left empty is dropped.
// Layers of buildLayer files are kept as they are.
func rootOnly(plan []layering.Layer) []layering.Layer {
	var out []layering.Layer
	for _, l := range plan {
		if l.Source != nil {
			out = append(out, l)
			continue
		}
		var kept []layers.Path
		for _, p := range l.Spec.Paths {
			if p.Rewrite != "" {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			continue
		}
		l.Spec.Paths = kept
		var perms []layers.Perm
		for _, r := range l.Spec.Perms {
			if r.Path == "" || slices.ContainsFunc(kept, func(p layers.Path) bool { return p.Path == r.Path }) {
				perms = append(perms, r)
			}
		}
		l.Spec.Perms = perms
		out = append(out, l)
	}
	return out
}

// storePaths returns the store paths the plan places at their store path,
// sorted.
func storePaths(plan []layering.Layer) []string {
	var out []string
	for _, l := range plan {
		for _, p := range l.Spec.Paths {
			if p.Rewrite == "" {
				out = append(out, p.Path)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkNixDatabase makes sure the Nix database the image holds (copied to
// /) registers exactly the image's store paths: its references, in the
// graph as Nix gave it (g, not the one without ignored paths), are the
// paths it names.
func checkNixDatabase(a *Attrs, g *closure.Graph, plan []layering.Layer) error {
	if a.NixDatabase == "" {
		return nil
	}
	if !slices.Contains(a.CopyToRoot, a.NixDatabase) {
		return fmt.Errorf("nixDatabase: %s is not in copyToRoot", a.NixDatabase)
	}
	if !g.Has(a.NixDatabase) {
		return fmt.Errorf("nixDatabase: %s is %w", a.NixDatabase, closure.ErrNotInGraph)
	}
	registered := g.References(a.NixDatabase)
	held := storePaths(plan)
	if slices.Equal(registered, held) {
		return nil
	}
	missing, extra := without(held, registered), without(registered, held)
	return fmt.Errorf("nixDatabase: %s does not register exactly the image's store paths (unregistered: %s; registered but not in the image: %s)",
		a.NixDatabase, list(missing), list(extra))
}

// without returns the paths of a not in b.
func without(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, p := range b {
		in[p] = true
	}
	var out []string
	for _, p := range a {
		if !in[p] {
			out = append(out, p)
		}
	}
	return out
}

func list(ps []string) string {
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, ", ")
}

// BuildNixDB computes the paths the Nix database of a buildImage call
// registers: the store paths its layers hold, a nixpush base's (fromImage)
// included, with their references as the closure graph gives them (a
// graph that holds the closure of the image's layer files and of its base
// too). The attributes are the image's, without the database.
func BuildNixDB(a *Attrs, opts ...Option) ([]nixdb.Path, error) {
	g, err := a.graph()
	if err != nil {
		return nil, err
	}
	o := makeOptions(opts)
	from, err := a.base(o)
	if err != nil {
		return nil, err
	}
	plan, err := imagePlan(a, g, from, o)
	if err != nil {
		return nil, err
	}
	var out []nixdb.Path
	for _, p := range storePaths(plan) {
		n, ok := g.Node(p)
		if !ok {
			return nil, fmt.Errorf("nix database: %s is %w (pass the layer files in exportReferencesGraph)", p, closure.ErrNotInGraph)
		}
		refs := n.References
		if n.SelfReference {
			refs = append(refs, p)
		}
		out = append(out, nixdb.Path{Path: p, NarHash: n.NarHash, NarSize: n.NarSize, References: refs, CA: n.CA})
	}
	return out, nil
}

// WriteNixDB reads the structured attributes in attrsFile and writes the
// Nix database of the image they describe to outputs.out, every path
// registered at the mtime attribute.
func WriteNixDB(ctx context.Context, attrsFile string, opts ...Option) error {
	a, err := ReadAttrs(attrsFile)
	if err != nil {
		return err
	}
	paths, err := BuildNixDB(a, opts...)
	if err != nil {
		return err
	}
	t, err := parseTime("mtime", a.MTime, layers.DefaultMTime)
	if err != nil {
		return err
	}
	return nixdb.Write(ctx, a.Outputs.Out, paths, t.Unix())
}
