package layering

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/description"
)

const narHash = "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29"
const prefix = "/nix/store/00000000000000000000000000000000-"

func sp(name string) string { return prefix + name }

// graph builds a closure graph from "name:ref,ref" entries.
func graph(t *testing.T, entries ...string) *closure.Graph {
	t.Helper()
	var nodes []closure.Node
	for _, e := range entries {
		name, refs, _ := strings.Cut(e, ":")
		n := closure.Node{Path: sp(name), NarHash: narHash, NarSize: uint64(len(name))}
		for _, r := range strings.Split(refs, ",") {
			if r != "" {
				n.References = append(n.References, sp(r))
			}
		}
		nodes = append(nodes, n)
	}
	g, err := closure.New(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// built is an already-built layer holding names ("sh" or "env@/").
func built(id string, names ...string) description.Layer {
	l := description.Layer{Digest: digest.FromString(id), Size: 512, MediaType: description.MediaTypeLayer}
	l.DiffID = l.Digest
	l.MTime = layers.DefaultMTime
	for _, n := range names {
		name, rw, _ := strings.Cut(n, "@")
		l.Paths = append(l.Paths, layers.Path{Path: sp(name), NarHash: narHash, Rewrite: rw})
	}
	return l
}

// show renders layers as "name name@/ …", with "(was ID)" for an explicit
// layer and "*" when it must be hashed again.
func show(ls []Layer) []string {
	var out []string
	for _, l := range ls {
		var names []string
		for _, p := range l.Spec.Paths {
			n := strings.TrimPrefix(p.Path, prefix)
			if p.Rewrite != "" {
				n += "@" + p.Rewrite
			}
			names = append(names, n)
		}
		s := strings.Join(names, " ")
		if l.Source != nil {
			s = fmt.Sprintf("%s (%s)", s, l.Source.Digest.Encoded()[:4])
		}
		if l.NeedsHash() {
			s += " *"
		}
		out = append(out, s)
	}
	return out
}

func id(s string) string { return digest.FromString(s).Encoded()[:4] }

// The fixture closure: app -> lib -> libc, app -> sh -> libc, env -> sh.
var fixture = []string{"libc:", "lib:libc", "sh:libc", "app:lib,sh,app", "env:sh", "wrapper:env"}

func TestSplit(t *testing.T) {
	tests := []struct {
		name       string
		deps       []string
		copyToRoot []string
		explicit   []description.Layer
		maxLayers  int
		want       []string
	}{
		{name: "one layer", deps: []string{"app"}, maxLayers: 1,
			want: []string{"app lib libc sh *"}},
		{name: "most popular at the bottom", deps: []string{"app"}, maxLayers: 2,
			want: []string{"libc *", "app lib sh *"}},
		{name: "ties by path", deps: []string{"app"}, maxLayers: 3,
			want: []string{"libc *", "lib *", "app sh *"}},
		{name: "budget larger than closure", deps: []string{"app"}, maxLayers: 10,
			want: []string{"libc *", "lib *", "sh *", "app *"}},
		{name: "several deps", deps: []string{"sh", "lib"}, maxLayers: 2,
			want: []string{"libc *", "lib sh *"}},
		{name: "copyToRoot in last layer, not in store", deps: []string{"app"}, copyToRoot: []string{"env"}, maxLayers: 3,
			// libc has 4 ancestors (lib, sh, app, env), sh 2, lib 1.
			want: []string{"libc *", "sh *", "app lib env@/ *"}},
		{name: "copyToRoot alone", copyToRoot: []string{"env"}, maxLayers: 1,
			want: []string{"libc sh env@/ *"}},
		{name: "copyToRoot own layer budget", copyToRoot: []string{"env"}, maxLayers: 5,
			want: []string{"libc *", "sh env@/ *"}},
		{name: "copyToRoot referenced is in store too", deps: []string{"wrapper"}, copyToRoot: []string{"env"}, maxLayers: 1,
			want: []string{"env libc sh wrapper env@/ *"}},
		{name: "copyToRoot also in deps", deps: []string{"env"}, copyToRoot: []string{"env"}, maxLayers: 1,
			want: []string{"env libc sh env@/ *"}},
		{name: "copyToRoot listed twice", copyToRoot: []string{"env", "env"}, maxLayers: 1,
			want: []string{"libc sh env@/ *"}},
		{name: "explicit paths removed from computed", deps: []string{"app"}, maxLayers: 2,
			explicit: []description.Layer{built("base", "libc", "sh")},
			want:     []string{"libc sh (" + id("base") + ")", "lib *", "app *"}},
		{name: "explicit covers everything", deps: []string{"sh"}, maxLayers: 2,
			explicit: []description.Layer{built("base", "libc", "sh")},
			want:     []string{"libc sh (" + id("base") + ")"}},
		{name: "explicit copyToRoot only covers root", copyToRoot: []string{"env"}, deps: []string{"env"}, maxLayers: 1,
			explicit: []description.Layer{built("base", "env@/", "libc")},
			want:     []string{"env@/ libc (" + id("base") + ")", "env sh *"}},
		{name: "identical layers once", deps: []string{"app"}, maxLayers: 1,
			explicit: []description.Layer{built("base", "libc"), built("top", "sh"), built("base", "libc")},
			want:     []string{"libc (" + id("base") + ")", "sh (" + id("top") + ")", "app lib *"}},
		{name: "sibling claim re-hashes the later layer", deps: []string{"app"}, maxLayers: 1,
			explicit: []description.Layer{built("a", "libc", "sh"), built("b", "libc", "lib")},
			want:     []string{"libc sh (" + id("a") + ")", "lib (" + id("b") + ") *", "app *"}},
		{name: "sibling left empty is dropped", deps: []string{"app"}, maxLayers: 1,
			explicit: []description.Layer{built("a", "libc", "sh"), built("b", "sh"), built("c", "lib")},
			want:     []string{"libc sh (" + id("a") + ")", "lib (" + id("c") + ")", "app *"}},
		{name: "same path different rewrite is no claim", maxLayers: 1,
			explicit: []description.Layer{built("a", "env@/"), built("b", "env")},
			want:     []string{"env@/ (" + id("a") + ")", "env (" + id("b") + ")"}},
	}
	g := graph(t, fixture...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Graph: g, Explicit: tt.explicit, MaxLayers: tt.maxLayers}
			for _, d := range tt.deps {
				in.Deps = append(in.Deps, sp(d))
			}
			for _, c := range tt.copyToRoot {
				in.CopyToRoot = append(in.CopyToRoot, sp(c))
			}
			got, err := Split(in)
			if err != nil {
				t.Fatal(err)
			}
			if s := show(got); !reflect.DeepEqual(s, tt.want) {
				t.Errorf("Split:\n got %q\nwant %q", s, tt.want)
			}
			again, _ := Split(in)
			if !reflect.DeepEqual(again, got) {
				t.Error("Split is not deterministic")
			}
		})
	}
}

func TestSplitFillsSpec(t *testing.T) {
	g := graph(t, fixture...)
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	perms := []layers.Perm{
		{Regex: "/tmp", Mode: "1777"},
		{Path: sp("sh"), Regex: ".*", Mode: "0555"},
		{Path: sp("libc"), Regex: ".*", Mode: "0444"},
	}
	got, err := Split(Input{Graph: g, Deps: []string{sp("sh")}, MaxLayers: 2, Perms: perms, MTime: mtime})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d layers, want 2", len(got))
	}
	top := got[1].Spec
	if want := []layers.Perm{perms[0], perms[1]}; !reflect.DeepEqual(top.Perms, want) {
		t.Errorf("perms of the sh layer = %+v, want %+v", top.Perms, want)
	}
	if !top.MTime.Equal(mtime) {
		t.Errorf("mtime = %v, want %v", top.MTime, mtime)
	}
	if p := top.Paths[0]; p.NarHash != narHash || p.NarSize != 2 {
		t.Errorf("path entry = %+v, want narHash and narSize from the graph", p)
	}
	for i, l := range got {
		if err := l.Spec.Validate(); err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
	}
	def, _ := Split(Input{Graph: g, Deps: []string{sp("sh")}, MaxLayers: 1})
	if !def[0].Spec.MTime.Equal(layers.DefaultMTime) {
		t.Errorf("default mtime = %v", def[0].Spec.MTime)
	}
}

func TestSplitTooManyLayers(t *testing.T) {
	var entries []string
	for i := range 130 {
		entries = append(entries, fmt.Sprintf("p%03d:", i))
	}
	g := graph(t, entries...)
	var deps []string
	for _, p := range g.Paths() {
		deps = append(deps, p)
	}
	tests := []struct {
		name      string
		maxLayers int
		explicit  int
		want      string
	}{
		{"computed", 128, 0, "image would have 128 layers (0 already built, 128 computed)"},
		{"explicit plus computed", 30, 100, "image would have 130 layers (100 already built, 30 computed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Graph: g, Deps: deps, MaxLayers: tt.maxLayers}
			for i := range tt.explicit {
				in.Explicit = append(in.Explicit, built(fmt.Sprint(i), fmt.Sprintf("p%03d", i)))
			}
			_, err := Split(in)
			if !errors.Is(err, ErrTooManyLayers) {
				t.Fatalf("err = %v, want ErrTooManyLayers", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if _, err := Split(Input{Graph: g, Deps: deps, MaxLayers: 127}); err != nil {
		t.Errorf("127 layers: %v", err)
	}
}

func TestSplitErrors(t *testing.T) {
	g := graph(t, fixture...)
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no budget", Input{Graph: g, MaxLayers: 0}, "maxLayers: 0, must be at least 1"},
		{"no graph", Input{MaxLayers: 1}, "closure graph: missing"},
		{"dep not in graph", Input{Graph: g, MaxLayers: 1, Deps: []string{sp("app"), sp("gone")}},
			"deps[1]: " + sp("gone") + " is not in the closure graph"},
		{"copyToRoot not in graph", Input{Graph: g, MaxLayers: 1, CopyToRoot: []string{sp("gone")}},
			"copyToRoot[0]: " + sp("gone") + " is not in the closure graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Split(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPopularity(t *testing.T) {
	// d <- b <- a, d <- c <- a, e alone; and the same with a cycle b <-> c.
	tests := []struct {
		name    string
		parents map[string][]string
		want    map[string]int
	}{
		{"diamond", map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}},
			map[string]int{"a": 0, "b": 1, "c": 1, "d": 3, "e": 0}},
		{"cycle", map[string][]string{"b": {"a", "c"}, "c": {"a", "b"}, "d": {"b", "c"}},
			map[string]int{"a": 0, "b": 2, "c": 2, "d": 3, "e": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := popularity([]string{"a", "b", "c", "d", "e"}, tt.parents)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("popularity = %v, want %v", got, tt.want)
			}
		})
	}
}
