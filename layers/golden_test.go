package layers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt with the digests computed now")

func ptr[T any](v T) *T { return &v }

// goldenCases pin the tar format: any change to a layer's bytes shows up as
// a changed digest here and must be a deliberate format change.
var goldenCases = []struct {
	name string
	spec Spec
}{
	{"tree", Spec{Paths: []Path{{Path: fxTree}}}},
	{"single-file", Spec{Paths: []Path{{Path: fxSingle}}}},
	{"closure", Spec{Paths: []Path{{Path: fxSingle}, {Path: fxTree}}}},
	{"copy-to-root", Spec{Paths: []Path{
		{Path: fxTree}, {Path: fxSingle},
		{Path: fxEnv, Rewrite: "/"}, {Path: fxEnv2, Rewrite: "/"},
	}}},
	{"rewrite-subdir", Spec{Paths: []Path{{Path: fxTree, Rewrite: "/opt/app"}}}},
	{"perms", Spec{
		Paths: []Path{{Path: fxTree}, {Path: fxEnv, Rewrite: "/"}},
		Perms: []Perm{
			{Regex: "/tmp", Mode: "1777"},
			{Path: fxTree, Regex: ".*/bin(/.*)?", UID: ptr(1000), GID: ptr(100), Uname: ptr("app"), Gname: ptr("users")},
			{Path: fxTree, Regex: ".*/bin/hello", Mode: "4755"},
		},
	}},
	{"mtime", Spec{Paths: []Path{{Path: fxTree}}, MTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
	// Compressed blobs (CompressionFormatVersion 1): the tar of "big" or
	// "copy-to-root", through each encoder at its default and another level.
	{"big", Spec{Paths: []Path{{Path: fxBig}}}},
	{"big-zstd", Spec{Paths: []Path{{Path: fxBig}}, Compression: &Compression{Algorithm: Zstd}}},
	{"big-zstd-19", Spec{Paths: []Path{{Path: fxBig}}, Compression: &Compression{Algorithm: Zstd, Level: 19}}},
	{"big-zstd-1", Spec{Paths: []Path{{Path: fxBig}}, Compression: &Compression{Algorithm: Zstd, Level: 1}}},
	{"big-gzip", Spec{Paths: []Path{{Path: fxBig}}, Compression: &Compression{Algorithm: Gzip}}},
	{"big-gzip-9", Spec{Paths: []Path{{Path: fxBig}}, Compression: &Compression{Algorithm: Gzip, Level: 9}}},
	{"copy-to-root-zstd", Spec{Paths: []Path{
		{Path: fxTree}, {Path: fxSingle},
		{Path: fxEnv, Rewrite: "/"}, {Path: fxEnv2, Rewrite: "/"},
	}, Compression: &Compression{Algorithm: Zstd}}},
	{"copy-to-root-gzip", Spec{Paths: []Path{
		{Path: fxTree}, {Path: fxSingle},
		{Path: fxEnv, Rewrite: "/"}, {Path: fxEnv2, Rewrite: "/"},
	}, Compression: &Compression{Algorithm: Gzip}}},
}

const goldenFile = "testdata/golden.txt"

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (run go test ./layers -run Golden -update to create it)", err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			want[name] = rest
		}
	}
	return want
}

func TestGoldenDigests(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	got := map[string]string{}
	for _, c := range goldenCases {
		d, n, err := Digest(context.Background(), c.spec, WithRoot(root))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got[c.name] = fmt.Sprintf("%s %d", d, n)
	}
	if *update {
		var lines []string
		for name, v := range got {
			lines = append(lines, name+" "+v)
		}
		sort.Strings(lines)
		content := "# case digest size — layer digests of testdata/store.txt; regenerate only for a deliberate format change\n" +
			strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(goldenFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t)
	for _, c := range goldenCases {
		if want[c.name] != got[c.name] {
			t.Errorf("%s: got %s, golden %s", c.name, got[c.name], want[c.name])
		}
	}
}

// TestHostIndependence builds the same fixture under every host variation
// that must not matter and expects the golden digests each time.
func TestHostIndependence(t *testing.T) {
	want := readGolden(t)
	hosts := []host{
		{umask: 0o022},
		{umask: 0o002},
		{umask: 0o077},
		{umask: 0o022, reverse: true},
		{umask: 0o022, hardlinks: true},
		{umask: 0o002, reverse: true, hardlinks: true},
	}
	for _, h := range hosts {
		t.Run(fmt.Sprintf("umask%03o-reverse=%v-hardlinks=%v", h.umask, h.reverse, h.hardlinks), func(t *testing.T) {
			root := materialize(t, h)
			for _, c := range goldenCases {
				d, n, err := Digest(context.Background(), c.spec, WithRoot(root))
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got := fmt.Sprintf("%s %d", d, n); got != want[c.name] {
					t.Errorf("%s: got %s, golden %s", c.name, got, want[c.name])
				}
			}
		})
	}
	t.Run("locale-and-timezone", func(t *testing.T) {
		t.Setenv("LC_ALL", "tr_TR.UTF-8")
		t.Setenv("TZ", "Pacific/Chatham")
		root := materialize(t, host{umask: 0o022})
		for _, c := range goldenCases {
			d, n, err := Digest(context.Background(), c.spec, WithRoot(root))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%s %d", d, n); got != want[c.name] {
				t.Errorf("%s: got %s, golden %s", c.name, got, want[c.name])
			}
		}
	})
}

// TestPathOrderIrrelevant: the order of Paths and the mtime's zone do not
// change the bytes.
func TestPathOrderIrrelevant(t *testing.T) {
	root := materialize(t, host{umask: 0o022})
	a := Spec{Paths: []Path{{Path: fxTree}, {Path: fxSingle}, {Path: fxEnv, Rewrite: "/"}}}
	b := Spec{Paths: []Path{{Path: fxEnv, Rewrite: "/"}, {Path: fxSingle}, {Path: fxTree}},
		MTime: DefaultMTime.In(time.FixedZone("x", 5*3600))}
	da, _, err := Digest(context.Background(), a, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	db, _, err := Digest(context.Background(), b, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatalf("order changed the digest: %s vs %s", da, db)
	}
}
