package layers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// host says how a fixture store is laid out on the host: everything that a
// layer's bytes must not depend on.
type host struct {
	umask     int
	reverse   bool // create entries in reverse order (other inode/readdir order)
	hardlinks bool // hardlink files with identical content, as nix-store --optimise does
}

type fixtureEntry struct {
	kind, path, arg string
}

func readFixture(t *testing.T) []fixtureEntry {
	t.Helper()
	f, err := os.Open("testdata/store.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixtureEntry
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(text, " ")
		var fields []string
		for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("testdata/store.txt:%d: %v", line, err)
			}
			s, _ := strconv.Unquote(q)
			fields = append(fields, s)
			rest = rest[len(q):]
		}
		e := fixtureEntry{kind: kind, path: fields[0]}
		if len(fields) > 1 {
			e.arg = fields[1]
		}
		out = append(out, e)
	}
	return out
}

// materialize writes the fixture store below a new root and returns the
// root; store paths are then read with WithRoot(root).
func materialize(t *testing.T, h host) string {
	t.Helper()
	root := t.TempDir()
	store := filepath.Join(root, StoreDir)
	entries := readFixture(t)
	old := syscall.Umask(h.umask)
	defer syscall.Umask(old)
	if err := os.MkdirAll(store, 0o777); err != nil {
		t.Fatal(err)
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
		if h.reverse {
			order[i] = len(entries) - 1 - i
		}
	}
	byContent := map[string]string{}
	for _, i := range order {
		e := entries[i]
		p := filepath.Join(store, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case "dir":
			err = os.MkdirAll(p, 0o777)
		case "file", "exec":
			mode := os.FileMode(0o666)
			if e.kind == "exec" {
				mode = 0o777
			}
			key := e.kind + "\x00" + e.arg
			if first, ok := byContent[key]; ok && h.hardlinks {
				err = os.Link(first, p)
				break
			}
			byContent[key] = p
			err = os.WriteFile(p, []byte(e.arg), mode)
		case "link":
			err = os.Symlink(e.arg, p)
		case "gen":
			err = os.WriteFile(p, generated(e.arg), 0o666)
		default:
			t.Fatalf("testdata/store.txt: unknown kind %q", e.kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Store paths of the fixture.
const (
	fxTree   = StoreDir + "/0000000000000000000000000000000a-tree"
	fxSingle = StoreDir + "/0000000000000000000000000000000b-single"
	fxEnv    = StoreDir + "/0000000000000000000000000000000c-env"
	fxEnv2   = StoreDir + "/0000000000000000000000000000000d-env2"
	fxClash  = StoreDir + "/0000000000000000000000000000000f-clash"
	fxBig    = StoreDir + "/0000000000000000000000000000000g-big"
)

// generated returns the contents of a "gen" fixture file: a few MiB, half
// text that compresses well and half bytes that do not, so that a
// compressor works through many blocks and windows. The bytes are fixed by
// the argument alone.
func generated(arg string) []byte {
	n, err := strconv.Atoi(arg)
	if err != nil {
		panic("testdata/store.txt: gen wants a size: " + arg)
	}
	out := make([]byte, 0, n)
	x := uint32(2463534242)
	for i := 0; len(out) < n; i++ {
		if (i/4096)%2 == 0 {
			out = append(out, fmt.Sprintf("line %d of a generated file that compresses well\n", i)...)
			continue
		}
		for j := 0; j < 64; j++ { // xorshift32: incompressible, deterministic
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			out = append(out, byte(x))
		}
	}
	return out[:n]
}
