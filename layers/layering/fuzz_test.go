package layering

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/description"
)

// FuzzSplit builds a random closure (path i refers only to paths below
// i), random roots and explicit layers from the input, and checks Split's
// invariants: every needed path is in the image exactly once per rewrite,
// the budget holds, and the result is deterministic.
func FuzzSplit(f *testing.F) {
	f.Add([]byte{5, 3, 0xff, 0x0f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06})
	f.Add([]byte{20, 1, 0xaa, 0x55, 0x33, 0x99, 0x11, 0x22, 0x44, 0x88, 0x10, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		next := func() byte {
			if len(b) == 0 {
				return 0
			}
			c := b[0]
			b = b[1:]
			return c
		}
		n := int(next()%30) + 1
		maxLayers := int(next()%10) + 1
		name := func(i int) string { return fmt.Sprintf("%sp%02d", prefix, i) }
		var nodes []closure.Node
		for i := range n {
			nd := closure.Node{Path: name(i), NarHash: narHash}
			for j := range i {
				if next()%4 == 0 {
					nd.References = append(nd.References, name(j))
				}
			}
			nodes = append(nodes, nd)
		}
		g, err := closure.New(nodes)
		if err != nil {
			t.Fatal(err)
		}
		in := Input{Graph: g, MaxLayers: maxLayers}
		for i := range n {
			switch next() % 6 {
			case 0:
				in.Deps = append(in.Deps, name(i))
			case 1:
				in.CopyToRoot = append(in.CopyToRoot, name(i))
			case 2:
				l := description.Layer{Digest: digest.FromString(fmt.Sprint(i, next()%3)), Size: 1}
				l.Paths = []layers.Path{{Path: name(i)}, {Path: name(int(next()) % n)}}
				if l.Paths[0] == l.Paths[1] {
					l.Paths = l.Paths[:1]
				}
				in.Explicit = append(in.Explicit, l)
			}
		}
		got, err := Split(in)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Split(in)
		if !reflect.DeepEqual(got, again) {
			t.Fatal("not deterministic")
		}
		placed := map[layers.Path]int{}
		computed := 0
		for i, l := range got {
			if len(l.Spec.Paths) == 0 {
				t.Fatalf("layer %d is empty", i)
			}
			if l.Source == nil {
				computed++
			}
			for _, p := range l.Spec.Paths {
				placed[layers.Path{Path: p.Path, Rewrite: p.Rewrite}]++
			}
		}
		if computed > maxLayers {
			t.Fatalf("%d computed layers, budget %d", computed, maxLayers)
		}
		for p, c := range placed {
			if c > 1 {
				t.Fatalf("%s@%s placed %d times", p.Path, p.Rewrite, c)
			}
		}
		var roots []string
		roots = append(roots, in.Deps...)
		for _, c := range in.CopyToRoot {
			roots = append(roots, g.References(c)...)
			if placed[layers.Path{Path: c, Rewrite: "/"}] == 0 {
				t.Fatalf("copyToRoot %s not at /", c)
			}
		}
		need, _ := g.Closure(roots...)
		for _, p := range need {
			if placed[layers.Path{Path: p}] == 0 {
				t.Fatalf("%s needed but not placed", p)
			}
		}
	})
}
