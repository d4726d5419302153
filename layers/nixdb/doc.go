// Package nixdb writes the Nix database of an image: the files that make
// a container's /nix/store a valid Nix store, so that Nix run inside the
// container (a CI runner, a development container) knows the store paths
// the image holds.
//
// Write lays out, below a directory that becomes "/" of the image:
//
//	nix/var/nix/db/db.sqlite        the database (Nix schema version 10)
//	nix/var/nix/db/schema           "10"
//	nix/var/nix/gcroots/docker/<p>  a symlink to /nix/store/<p> per path
//
// The database registers exactly the paths given, each with its NAR hash
// (stored as Nix stores it, "sha256:<base16>"), NAR size, references (a
// path that refers to itself lists itself), content address if any, no
// deriver and no signatures, and the same fixed registration time. It is
// written by a pure-Go SQLite (modernc.org/sqlite, no cgo) in one
// transaction, paths in bytewise order, with the page size, journal mode
// and schema text pinned, so its bytes depend only on the paths and the
// registration time (and on the SQLite version nixpush is built with,
// which writes its version number into the file header): the golden
// digest in the tests pins them. The set must be closed under
// references: a path referring to a path outside the set is an error
// naming both, since Nix assumes every reference of a valid path is valid.
//
// The schema is Nix's own (schema.sql of Nix 2.x, schema version 10,
// unchanged from Nix 2.0 to today); Nix opens such a database as it
// opens one it created, switching it to its journal mode (WAL) on first
// write. The gcroots keep the image's store paths alive if Nix collects
// garbage inside the container, as nix2container and dockerTools do.
package nixdb
