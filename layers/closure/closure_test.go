package closure

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const hash = "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29"

func sp(name string) string { return "/nix/store/00000000000000000000000000000000-" + name }

func node(name string, refs ...string) string {
	q := make([]string, len(refs))
	for i, r := range refs {
		q[i] = fmt.Sprintf("%q", sp(r))
	}
	return fmt.Sprintf(`{"path":%q,"narHash":%q,"narSize":8,"closureSize":8,"references":[%s]}`,
		sp(name), hash, strings.Join(q, ","))
}

func TestParse(t *testing.T) {
	in := "[" + node("app", "app", "lib", "libc") + "," + node("lib", "libc") + "," + node("libc", "libc") + "]"
	g, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("Len = %d, want 3", g.Len())
	}
	if got, want := g.References(sp("app")), []string{sp("lib"), sp("libc")}; !reflect.DeepEqual(got, want) {
		t.Errorf("References(app) = %v, want %v (self-reference dropped)", got, want)
	}
	if got := g.References(sp("libc")); len(got) != 0 {
		t.Errorf("References(libc) = %v, want none", got)
	}
	c, err := g.Closure(sp("lib"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sp("lib"), sp("libc")}; !reflect.DeepEqual(c, want) {
		t.Errorf("Closure(lib) = %v, want %v", c, want)
	}
	if _, err := g.Closure(sp("nope")); !errors.Is(err, ErrNotInGraph) {
		t.Errorf("Closure(nope) = %v, want ErrNotInGraph", err)
	}
	n, ok := g.Node(sp("app"))
	if !ok || n.NarHash != hash || n.NarSize != 8 {
		t.Errorf("Node(app) = %+v, %v", n, ok)
	}
	if got, want := g.Paths(), []string{sp("app"), sp("lib"), sp("libc")}; !reflect.DeepEqual(got, want) {
		t.Errorf("Paths = %v, want %v", got, want)
	}
	parents := g.Referrers(g.Paths())
	if want := []string{sp("app"), sp("lib")}; !reflect.DeepEqual(parents[sp("libc")], want) {
		t.Errorf("Referrers[libc] = %v, want %v", parents[sp("libc")], want)
	}
}

func TestParseCA(t *testing.T) {
	in := `[{"ca":"fixed:r:` + hash + `","closureSize":1,"narHash":"` + hash + `","narSize":1,"path":"` + sp("bb") + `","references":[]}]`
	g, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := g.Node(sp("bb")); n.CA == "" {
		t.Error("ca not kept")
	}
}

func TestParseEmpty(t *testing.T) {
	g, err := Parse([]byte(" [] "))
	if err != nil || g.Len() != 0 {
		t.Fatalf("Parse([]) = %v, %v", g, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"malformed", `[{"path":`, "malformed JSON"},
		{"not an array", `{"path":"x"}`, "closure graph: expected an array, got JSON object"},
		{"null", `null`, "got null"},
		{"trailing data", `[] []`, "data after"},
		{"wrong type", "[" + node("a") + `,{"path":"` + sp("b") + `","narSize":"big"}]`,
			"closure graph: [1].narSize: expected an integer from 0 to 2^64-1, got JSON string"},
		{"wrong reference type", "[" + node("a") + `,{"path":"` + sp("b") + `","references":["` + sp("a") + `",7]}]`,
			"closure graph: [1].references[1]: expected a string, got JSON number 7"},
		{"unknown field", "[" + node("a") + `,{"path":"` + sp("a") + `","bogus":1}]`, "closure graph: [1].bogus: unknown field"},
		{"bad store path", `[{"path":"/usr/bin/sh","narHash":"` + hash + `"}]`, `"/usr/bin/sh" is not below /nix/store`},
		{"bad hash part", `[{"path":"/nix/store/eeee-x","narHash":"` + hash + `"}]`, "/nix/store/eeee-x"},
		{"duplicate", "[" + node("a") + "," + node("a") + "]", sp("a") + ": listed twice"},
		{"missing narHash", `[{"path":"` + sp("a") + `"}]`, sp("a") + ": narHash: missing"},
		{"bad narHash", `[{"path":"` + sp("a") + `","narHash":"sha256:zz"}]`, sp("a") + `: narHash "sha256:zz"`},
		{"dangling reference", "[" + node("a", "b") + "]", sp("a") + ": references " + sp("b") + ", which is not in the closure graph"},
		{"bad reference", `[{"path":"` + sp("a") + `","narHash":"` + hash + `","references":["/tmp/x"]}]`, sp("a") + `: references: "/tmp/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[" + node("a", "b") + "," + node("b") + "]"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		for _, p := range g.Paths() {
			for _, r := range g.References(p) {
				if r == p || !g.Has(r) {
					t.Fatalf("%s: bad reference %s", p, r)
				}
			}
		}
	})
}
