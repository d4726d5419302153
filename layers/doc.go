// Package layers turns sets of Nix store paths into deterministic,
// uncompressed tar layers, and hashes them in one streaming pass.
//
// The same code writes a layer when Nix describes an image (to hash it) and
// when nixpush pushes it (to send it), so the bytes sent are the bytes that
// were hashed. A layer's bytes depend only on its Spec and on the contents
// of the store paths it names: never on umask, host modes, owners, inode or
// directory order, hardlinks, the clock, the time zone or the locale.
//
// # Tar format rules (format version 1)
//
// Entries:
//   - Names are relative ("nix/store/…-hello/bin/hello"); a directory's name
//     ends in "/". There is no "./" entry.
//   - Entries appear in bytewise order of their names. Because a directory
//     sorts as its name plus "/", every directory precedes its contents.
//   - Every layer holds "nix/" and "nix/store/", so it extracts on its own.
//   - A store path's contents go to nix/store/<name>, or, when the path has
//     a Rewrite (copyToRoot), to that image directory. Directories that
//     only lead to such a place are synthesised.
//   - Several sources may provide the same directory; their contents merge.
//     Several sources may provide the same file or symlink only if they are
//     identical (type, executable bit, bytes or target); anything else is an
//     error naming the image path and both store paths.
//
// Metadata (set explicitly, never copied from the host):
//   - Regular files: mode 0444, or 0555 when the owner's execute bit is set
//     on the host (NAR's notion of "executable"). Directories from the
//     store: 0555. Synthesised directories: 0755. Symlinks: 0777, target
//     written as stored.
//   - Owner uid 0, gid 0, empty user and group names.
//   - Modification time: the Spec's MTime (default DefaultMTime,
//     1970-01-01T00:00:01Z), truncated to whole seconds; no access or change
//     times.
//   - Hardlinks are written as regular files, so `nix-store --optimise`
//     never changes a layer's bytes. No extended attributes.
//   - Device files, sockets and fifos are errors naming the path.
//   - Headers are USTAR unless a name or size does not fit, then PAX
//     (archive/tar's choice, pinned by the golden digests).
//   - The archive ends with archive/tar's two zero blocks, with no padding
//     to a record size.
//
// Perms rules override metadata: each Perm whose Regex matches an entry's
// whole absolute image path (without trailing slash), and whose Path, if
// set, is one of the store paths providing the entry, sets the fields it
// has (mode, uid, gid, uname, gname). Rules apply in order; later ones win.
//
// The golden digests in testdata/golden.txt pin these rules: a change to
// them is a change of format and must change the format version.
//
// # Confinement
//
// A Spec is untrusted input. Each of its store paths must be spelled
// exactly /nix/store/<32 nixbase32 characters>-<name> (no trailing "/",
// no "/.", "//" or ".."), and everything is read beneath it without
// following a symlink: the store directory is opened once, and every
// entry below it is opened by one name relative to its parent's open
// descriptor (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or openat
// with O_NOFOLLOW on kernels without openat2). A store path that is a
// symlink is a symlink entry; a directory replaced by a symlink while a
// layer is read is refused (ErrSymlink), never followed. Files are opened
// before their header is written, and the header describes the open file.
// NAR hashes (Changed) are computed the same way, and so is a blob file
// (OpenFile, OpenBlob: a base image's layer kept as a file beneath a
// store path, one component at a time, a regular file only).
//
// # Streaming
//
// Write reads one directory listing at a time and copies file contents with
// a 1 MiB buffer; nothing holds a whole layer or file in memory and nothing
// is written to disk. Digest hashes the stream; Open serves it as a reader
// that checks the recorded digest as it goes and, on a mismatch, names the
// store paths whose NAR hash changed (see Changed).
package layers

// FormatVersion is the version of the tar format rules above.
const FormatVersion = 1
