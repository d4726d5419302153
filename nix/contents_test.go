package nix_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/layers/description"
)

// contentsLet defines, for the tests below, a closure where ignore has
// something to drop: app refers to busybox and to docs; docs refers to
// busybox too, and to extra, which nothing else refers to.
const contentsLet = `let
  run = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-e" "-c" script ];
  };
  extra = run "extra" "echo extra > $out";
  docs = run "docs" "${bb}/bin/busybox mkdir $out; echo ${extra} ${bb} > $out/see";
  app = run "app" ''
    ${bb}/bin/busybox mkdir -p $out/bin
    echo '#!${bb}/bin/busybox sh' > $out/bin/app
    echo '# docs: ${docs}' >> $out/bin/app
    ${bb}/bin/busybox chmod 0555 $out/bin/app
  '';
in `

// storeNames lists, sorted, the names of an image's paths ("busybox",
// "rootfs@/").
func storeNames(ls []description.Layer) []string {
	var out []string
	for _, ns := range names(ls) {
		out = append(out, ns...)
	}
	slices.Sort(out)
	return out
}

func TestIgnoreAndIncludeStorePaths(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, body string
		want       []string
	}{
		{"everything",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; config.Entrypoint = [ "${app}/bin/app" ]; }`,
			[]string{"app", "busybox", "docs", "extra", "rootfs@/"}},
		{"ignore drops docs and extra, which only docs refers to, and keeps busybox",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; config.Entrypoint = [ "${app}/bin/app" ]; ignore = [ docs ]; }`,
			[]string{"app", "busybox", "rootfs@/"}},
		{"ignore drops a path that others refer to",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; config.Entrypoint = [ "${app}/bin/app" ]; ignore = [ bb ]; }`,
			[]string{"app", "docs", "extra", "rootfs@/"}},
		{"buildLayer ignore",
			`np.buildLayer { deps = [ app ]; ignore = [ docs ]; }`,
			[]string{"app", "busybox"}},
		{"includeStorePaths = false",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; includeStorePaths = false; }`,
			[]string{"rootfs@/"}},
		{"includeStorePaths = false keeps buildLayer layers",
			`np.buildImage { name = "x"; layers = [ ex.base ]; copyToRoot = [ ex.rootfs ]; includeStorePaths = false; }`,
			[]string{"busybox", "rootfs@/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.expr(t, contentsLet+tt.body, "")
			if err != nil {
				t.Fatal(err)
			}
			// check also proves the description refers to exactly the
			// paths it lists, so nix copy brings what a push needs.
			ls := check(t, out, !strings.HasPrefix(tt.body, "np.buildLayer"))
			if got := storeNames(ls); !slices.Equal(got, tt.want) {
				t.Errorf("paths %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContentsBadInput(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, body, want string
	}{
		{"copyToRoot ignored",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; ignore = [ ex.rootfs ]; }`,
			"copyToRoot[0]: /nix/store/"},
		{"config names an ignored path",
			`np.buildImage { name = "x"; config.Entrypoint = [ "${app}/bin/app" ]; ignore = [ app ]; }`,
			"config: names /nix/store/"},
		{"deps ignored",
			`np.buildLayer { deps = [ app ]; ignore = [ app ]; }`,
			"deps[0]: /nix/store/"},
		{"config needs a store path without includeStorePaths",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; config.Entrypoint = [ "${app}/bin/app" ]; includeStorePaths = false; }`,
			"includeStorePaths is false"},
		{"a Nix database cannot miss an ignored reference",
			`np.buildImage { name = "x"; config.Entrypoint = [ "${app}/bin/app" ]; ignore = [ docs ]; initializeNixDatabase = true; }`,
			"-app refers to /nix/store/"},
		{"nixUid negative",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; initializeNixDatabase = true; nixUid = -1; }`,
			"nixUid: -1 is not an integer"},
		{"initializeNixDatabase not a bool",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; initializeNixDatabase = "yes"; }`,
			"initializeNixDatabase must be true or false"},
		{"users: unknown attribute",
			`np.users { users.app = { uid = 1000; hmoe = "/x"; }; }`,
			"users.app.hmoe: unknown attribute"},
		{"users: unknown group",
			`np.users { users.app = { uid = 1000; groups = [ "wheel" ]; }; }`,
			`users.app.groups[0]: no group "wheel"`},
		{"users: uid missing",
			`np.users { users.app = { }; }`,
			"users.app.uid: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.expr(t, contentsLet+tt.body, "")
			if err == nil {
				t.Fatalf("built %s, want a failure naming %q", out, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not name %q:\n%v", tt.want, err)
			}
		})
	}
}
