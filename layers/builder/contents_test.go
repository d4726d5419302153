package builder

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/nixdb"
)

const (
	nixDB = "/nix/store/66666666666666666666666666666666-nixpush-nix-database"
	extra = "/nix/store/77777777777777777777777777777777-extra"
)

// TestBuildNixDB: the database registers the image's store paths (app
// through the config, libc, which refers to itself), not the copyToRoot
// path nothing refers to, nor the config carrier.
func TestBuildNixDB(t *testing.T) {
	a, err := ReadAttrs(attrsFile(t, "image.attrs.json", "/unused"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := BuildNixDB(a)
	if err != nil {
		t.Fatal(err)
	}
	want := []nixdb.Path{
		{Path: libc, NarHash: "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29", NarSize: 100, References: []string{libc}},
		{Path: app, NarHash: "sha256:18w4c7cm94lsii8b4kivk2hql0q3yy4jrxqvxa1rdlfhg966v699", NarSize: 200, References: []string{libc}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("registered\n %+v\nwant\n %+v", got, want)
	}
}

// TestCheckNixDatabase: the image builder refuses a database that does not
// register exactly the image's store paths.
func TestCheckNixDatabase(t *testing.T) {
	a, err := ReadAttrs(attrsFile(t, "image.attrs.json", "/unused"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.graph()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		refs []string
		want string // "" for no error
	}{
		{"exact", []string{app, libc}, ""},
		{"one missing", []string{libc}, "unregistered: " + app},
		// A path the database refers to joins the closure; only an
		// ignored one can be registered and yet not in the image.
		{"one extra", []string{app, extra, libc}, "registered but not in the image: " + extra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := "sha256:0h2cvvd5bkprq91zyak0149xwqr6p5hc0vw1xrshlzfg6z8dlk29"
			nodes := []closure.Node{{Path: nixDB, NarHash: h, References: tt.refs}, {Path: extra, NarHash: h}}
			for _, p := range g.Paths() {
				n, _ := g.Node(p)
				nodes = append(nodes, n)
			}
			gdb, err := closure.New(nodes)
			if err != nil {
				t.Fatal(err)
			}
			b := *a
			b.CopyToRoot = append(append([]string(nil), a.CopyToRoot...), nixDB)
			b.NixDatabase = nixDB
			b.Ignore = []string{extra}
			plan, err := imagePlan(&b, gdb, nil, makeOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = checkNixDatabase(&b, gdb, plan)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
	// BuildImage runs the check.
	b := *a
	b.NixDatabase = nixDB
	if _, err := BuildImage(context.Background(), &b); err == nil || !strings.Contains(err.Error(), "nixDatabase: "+nixDB+" is not in copyToRoot") {
		t.Errorf("BuildImage with a database outside copyToRoot: %v", err)
	}
}
