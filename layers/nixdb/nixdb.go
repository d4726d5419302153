package nixdb

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nixpush/nixpush/layers"
)

// SchemaVersion is the Nix database schema version written to the schema
// file (nixSchemaVersion in Nix's local-store.cc).
const SchemaVersion = 10

// Locations below the directory Write fills.
const (
	DBDir      = "nix/var/nix/db"
	GCRootsDir = "nix/var/nix/gcroots/docker"
)

// ErrNotClosed is wrapped by the error for a path whose reference is not
// registered.
var ErrNotClosed = errors.New("the set of registered paths must hold every reference")

// Path is one store path to register.
type Path struct {
	// Path is the store path, /nix/store/<hash>-<name>.
	Path string
	// NarHash is its NAR hash as Nix reports it (sha256:<base32>, SRI or
	// base16).
	NarHash string
	// NarSize is the size of its NAR serialisation.
	NarSize uint64
	// References are the store paths it refers to; it lists itself when it
	// refers to itself.
	References []string
	// CA is its content address ("fixed:r:sha256:…"), if any.
	CA string
}

// schema is Nix's schema.sql (schema version 10), as Nix runs it on a
// new store; SQLite keeps each statement's text, so the database reads
// as one Nix created.
const schema = `create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer, -- null implies "false"
    sigs             text, -- space-separated
    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo
);

create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);

create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);

create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;

create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null, -- symbolic output id, usually "out"
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);

create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
`

// pragmas pin what decides the file's bytes beyond its rows: the page
// size, no journal (the file is new; a failed build leaves nothing), no
// incremental vacuum, UTF-8.
var pragmas = []string{
	"pragma page_size = 4096",
	"pragma auto_vacuum = none",
	"pragma encoding = 'UTF-8'",
	"pragma journal_mode = off",
	"pragma synchronous = off",
	"pragma locking_mode = exclusive",
}

// Write writes the database, the schema file and the gcroots of paths
// below dir (DBDir, GCRootsDir), every path registered at
// registrationTime (Unix seconds). dir must not hold them yet.
func Write(ctx context.Context, dir string, paths []Path, registrationTime int64) error {
	sorted, err := check(paths)
	if err != nil {
		return err
	}
	db := filepath.Join(dir, DBDir)
	if err := os.MkdirAll(db, 0o755); err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	if err := WriteDB(ctx, filepath.Join(db, "db.sqlite"), sorted, registrationTime); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(db, "schema"), fmt.Appendf(nil, "%d", SchemaVersion), 0o644); err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	roots := filepath.Join(dir, GCRootsDir)
	if err := os.MkdirAll(roots, 0o755); err != nil {
		return fmt.Errorf("nix database: %w", err)
	}
	for _, p := range sorted {
		if err := os.Symlink(p.Path, filepath.Join(roots, path.Base(p.Path))); err != nil {
			return fmt.Errorf("nix database: gcroot of %s: %w", p.Path, err)
		}
	}
	return nil
}

// check validates paths and returns them sorted by store path.
func check(paths []Path) ([]Path, error) {
	sorted := slices.Clone(paths)
	slices.SortFunc(sorted, func(a, b Path) int { return strings.Compare(a.Path, b.Path) })
	in := make(map[string]bool, len(sorted))
	for i, p := range sorted {
		if err := layers.ValidateStorePath(p.Path); err != nil {
			return nil, fmt.Errorf("nix database: %w", err)
		}
		if i > 0 && sorted[i-1].Path == p.Path {
			return nil, fmt.Errorf("nix database: %s listed twice", p.Path)
		}
		in[p.Path] = true
	}
	for _, p := range sorted {
		for _, r := range p.References {
			if !in[r] {
				return nil, fmt.Errorf("nix database: %s refers to %s, which is not registered: %w", p.Path, r, ErrNotClosed)
			}
		}
	}
	return sorted, nil
}

// base16 turns a NAR hash into the form Nix stores, "sha256:<hex>".
func base16(p Path) (string, error) {
	d, err := layers.ParseNarHash(p.NarHash)
	if err != nil {
		return "", fmt.Errorf("nix database: %s: narHash %w", p.Path, err)
	}
	return "sha256:" + hex.EncodeToString(d), nil
}

// WriteDB writes only the SQLite file name (which must not exist),
// registering paths. Write calls it; it is exported for tests and tools
// that lay the files out themselves.
func WriteDB(ctx context.Context, name string, paths []Path, registrationTime int64) (err error) {
	sorted, err := check(paths)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("nix database %s: already exists", name)
	}
	db, err := sql.Open("sqlite", "file:"+name)
	if err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("nix database %s: %w", name, cerr)
		}
	}()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	defer conn.Close()
	for _, p := range pragmas {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("nix database %s: %s: %w", name, p, err)
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("nix database %s: schema: %w", name, err)
	}
	id := make(map[string]int64, len(sorted))
	ins, err := tx.PrepareContext(ctx, `insert into ValidPaths (path, hash, registrationTime, narSize, ca) values (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	defer ins.Close()
	for _, p := range sorted {
		hash, err := base16(p)
		if err != nil {
			return err
		}
		var ca any
		if p.CA != "" {
			ca = p.CA
		}
		if p.NarSize > 1<<63-1 {
			return fmt.Errorf("nix database: %s: narSize %d out of range", p.Path, p.NarSize)
		}
		res, err := ins.ExecContext(ctx, p.Path, hash, registrationTime, int64(p.NarSize), ca)
		if err != nil {
			return fmt.Errorf("nix database %s: registering %s: %w", name, p.Path, err)
		}
		if id[p.Path], err = res.LastInsertId(); err != nil {
			return fmt.Errorf("nix database %s: %w", name, err)
		}
	}
	ref, err := tx.PrepareContext(ctx, `insert into Refs (referrer, reference) values (?, ?)`)
	if err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	defer ref.Close()
	for _, p := range sorted {
		refs := slices.Clone(p.References)
		slices.Sort(refs)
		for _, r := range slices.Compact(refs) {
			if _, err := ref.ExecContext(ctx, id[p.Path], id[r]); err != nil {
				return fmt.Errorf("nix database %s: reference %s → %s: %w", name, p.Path, r, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("nix database %s: %w", name, err)
	}
	return nil
}
