package layering

import (
	"fmt"
	"testing"

	"github.com/nixpush/nixpush/layers/closure"
)

// BenchmarkSplit splits a closure the size of a large application's: 3000
// paths, each referring to up to 10 paths below it.
func BenchmarkSplit(b *testing.B) {
	const n = 3000
	name := func(i int) string { return fmt.Sprintf("%sp%04d", prefix, i) }
	nodes := make([]closure.Node, n)
	for i := range nodes {
		nodes[i] = closure.Node{Path: name(i), NarHash: narHash}
		for k := 1; k <= 10 && i-k*k >= 0; k++ {
			nodes[i].References = append(nodes[i].References, name(i-k*k))
		}
	}
	g, err := closure.New(nodes)
	if err != nil {
		b.Fatal(err)
	}
	in := Input{Graph: g, Deps: []string{name(n - 1)}, MaxLayers: 100}
	for b.Loop() {
		if _, err := Split(in); err != nil {
			b.Fatal(err)
		}
	}
}
