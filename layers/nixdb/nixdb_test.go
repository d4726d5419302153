package nixdb_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nixpush/nixpush/layers/nixdb"
)

const (
	pA = "/nix/store/00000000000000000000000000000000-a"
	pB = "/nix/store/11111111111111111111111111111111-b"
	pC = "/nix/store/22222222222222222222222222222222-c"
)

// fixture is a small closure: c refers to a, b and itself; b to a.
func fixture() []nixdb.Path {
	return []nixdb.Path{
		{Path: pC, NarHash: "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", NarSize: 300, References: []string{pB, pA, pC}},
		{Path: pA, NarHash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", NarSize: 100, CA: "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"},
		{Path: pB, NarHash: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", NarSize: 200, References: []string{pA}},
	}
}

// golden is the sha256 of db.sqlite for fixture() at registration time 1.
// It changes only with the schema, the pinned pragmas, the row order or
// the SQLite version (modernc.org/sqlite in go.mod); any such change must
// be deliberate.
const golden = "8f8a4860f0d7809d95e53ce1415072a36e17a378694a812ee138a2951fdbd9df"

func sum(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestGoldenAndDeterministic(t *testing.T) {
	var sums []string
	for range 2 {
		dir := t.TempDir()
		// Reversed input order must not matter.
		paths := fixture()
		if len(sums) == 1 {
			paths[0], paths[2] = paths[2], paths[0]
		}
		if err := nixdb.Write(context.Background(), dir, paths, 1); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum(t, filepath.Join(dir, nixdb.DBDir, "db.sqlite")))
		schema, err := os.ReadFile(filepath.Join(dir, nixdb.DBDir, "schema"))
		if err != nil || string(schema) != "10" {
			t.Errorf("schema file: %q, %v; want \"10\"", schema, err)
		}
		for _, p := range []string{pA, pB, pC} {
			target, err := os.Readlink(filepath.Join(dir, nixdb.GCRootsDir, filepath.Base(p)))
			if err != nil || target != p {
				t.Errorf("gcroot of %s: %q, %v", p, target, err)
			}
		}
	}
	if sums[0] != sums[1] {
		t.Fatalf("two writes differ: %s, %s", sums[0], sums[1])
	}
	if sums[0] != golden {
		t.Errorf("db.sqlite sha256 %s, golden %s", sums[0], golden)
	}
}

func TestRows(t *testing.T) {
	name := filepath.Join(t.TempDir(), "db.sqlite")
	if err := nixdb.WriteDB(context.Background(), name, fixture(), 42); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+name+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type row struct {
		ID       int64
		Path     string
		Hash     string
		Time     int64
		NarSize  int64
		CA       sql.NullString
		Deriver  sql.NullString
		Ultimate sql.NullInt64
	}
	rs, err := db.Query(`select id, path, hash, registrationTime, narSize, ca, deriver, ultimate from ValidPaths order by id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.ID, &r.Path, &r.Hash, &r.Time, &r.NarSize, &r.CA, &r.Deriver, &r.Ultimate); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	empty := "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	want := []row{
		{1, pA, empty, 42, 100, sql.NullString{String: "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", Valid: true}, sql.NullString{}, sql.NullInt64{}},
		{2, pB, empty, 42, 200, sql.NullString{}, sql.NullString{}, sql.NullInt64{}},
		{3, pC, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 42, 300, sql.NullString{}, sql.NullString{}, sql.NullInt64{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ValidPaths:\n got %+v\nwant %+v", got, want)
	}
	var refs [][2]int64
	rr, err := db.Query(`select referrer, reference from Refs order by referrer, reference`)
	if err != nil {
		t.Fatal(err)
	}
	for rr.Next() {
		var a, b int64
		if err := rr.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, [2]int64{a, b})
	}
	if want := [][2]int64{{2, 1}, {3, 1}, {3, 2}, {3, 3}}; !reflect.DeepEqual(refs, want) {
		t.Errorf("Refs: %v, want %v", refs, want)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		paths []nixdb.Path
		is    error
	}{
		{"reference not registered", []nixdb.Path{{Path: pB, NarHash: fixture()[2].NarHash, References: []string{pA}}}, nixdb.ErrNotClosed},
		{"bad store path", []nixdb.Path{{Path: "/nix/store/x", NarHash: fixture()[2].NarHash}}, nil},
		{"twice", []nixdb.Path{fixture()[1], fixture()[1]}, nil},
		{"bad hash", []nixdb.Path{{Path: pA, NarHash: "md5:00"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := nixdb.WriteDB(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"), tt.paths, 1)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			t.Log(err)
		})
	}
}
