package layers

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nix-community/go-nix/pkg/storepath"
)

// DefaultMTime is the modification time written on every entry unless a
// layer asks for another: one second past the epoch, as nix2container and
// dockerTools do, because some tools treat a zero time as "unset".
var DefaultMTime = time.Unix(1, 0).UTC()

// StoreDir is where store paths live, on the host and in every image.
const StoreDir = "/nix/store"

// Spec says what goes into one layer. Its tar bytes, and so its digest,
// depend only on the Spec and on the contents of the store paths it names.
// Paths and MTime are left out of JSON when empty: a description's blob
// layer (a file in the store, kept as it is) has neither; every other
// layer has both, so its bytes are the same as before.
type Spec struct {
	// Paths are the store paths in the layer, in any order.
	Paths []Path `json:"paths,omitempty"`
	// Perms override the normalised metadata of matching entries.
	Perms []Perm `json:"perms,omitempty"`
	// MTime is written on every entry.
	MTime time.Time `json:"mtime,omitzero"`
	// Compression, when set, compresses the tar into the layer's blob;
	// the blob is the tar itself without it.
	Compression *Compression `json:"compression,omitempty"`
}

// Path is one store path in a layer.
type Path struct {
	// Path is the absolute store path, /nix/store/<hash>-<name>.
	Path string `json:"path"`
	// NarHash is the path's NAR hash as Nix reports it (sha256:<base32>);
	// it names the path at fault when a layer's bytes no longer match.
	NarHash string `json:"narHash"`
	// NarSize is the size of the path's NAR serialisation.
	NarSize uint64 `json:"narSize"`
	// Rewrite, when set, is an absolute directory of the image where the
	// path's contents are placed instead of at the store path itself
	// (copyToRoot uses "/").
	Rewrite string `json:"rewrite,omitempty"`
}

// Perm overrides the metadata of the entries it matches. Rules apply in
// order; each matching rule sets the fields it has.
type Perm struct {
	// Path, when set, limits the rule to entries that come from this store
	// path.
	Path string `json:"path,omitempty"`
	// Regex must match the entry's whole absolute image path, without a
	// trailing slash ("/nix/store/…-foo/bin/foo", "/tmp"). RE2 syntax.
	Regex string `json:"regex"`
	// Mode is an octal permission string such as "0755" or "1777".
	Mode  string  `json:"mode,omitempty"`
	UID   *int    `json:"uid,omitempty"`
	GID   *int    `json:"gid,omitempty"`
	Uname *string `json:"uname,omitempty"`
	Gname *string `json:"gname,omitempty"`
}

// Validate checks a Spec without touching the store. Errors name the field
// at fault, relative to the spec ("paths[2].path").
func (s Spec) Validate() error {
	if len(s.Paths) == 0 {
		return fmt.Errorf("paths: a layer needs at least one store path")
	}
	seen := map[Path]bool{}
	for i, p := range s.Paths {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("paths[%d].%w", i, err)
		}
		key := Path{Path: p.Path, Rewrite: p.Rewrite}
		if seen[key] {
			return fmt.Errorf("paths[%d].path: %s listed twice", i, p.Path)
		}
		seen[key] = true
	}
	for i, r := range s.Perms {
		if _, err := r.compile(); err != nil {
			return fmt.Errorf("perms[%d].%w", i, err)
		}
	}
	if s.Compression != nil {
		if err := s.Compression.Validate(); err != nil {
			return fmt.Errorf("compression.%w", err)
		}
	}
	return nil
}

// Validate checks one Path entry.
func (p Path) Validate() error {
	if err := ValidateStorePath(p.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if p.Rewrite != "" && (!path.IsAbs(p.Rewrite) || path.Clean(p.Rewrite) != p.Rewrite) {
		return fmt.Errorf("rewrite: %q is not a clean absolute directory", p.Rewrite)
	}
	if p.NarHash != "" {
		if _, err := ParseNarHash(p.NarHash); err != nil {
			return fmt.Errorf("narHash: %w", err)
		}
	}
	return nil
}

// ValidateStorePath checks that s is exactly a store path:
// StoreDir/<32 nixbase32 characters>-<name>, nothing before or after it (no
// trailing "/", no "/." or "/..", no doubled "/"), so that it names one
// entry of the store directory and nothing else.
func ValidateStorePath(s string) error {
	if !strings.HasPrefix(s, StoreDir+"/") {
		return fmt.Errorf("%q is not below %s", s, StoreDir)
	}
	if strings.Contains(s[len(StoreDir)+1:], "/") {
		return fmt.Errorf("%q is not a store path: it names something inside or beside one (a store path is %s/<hash>-<name>, with nothing after it)", s, StoreDir)
	}
	sp, err := storepath.FromAbsolutePath(s)
	if err != nil {
		return fmt.Errorf("%q is not a valid store path: %w", s, err)
	}
	// go-nix cleans the path before checking it; only the exact spelling
	// of a store path is one.
	if !storepath.PathRe.MatchString(s) || sp.Absolute() != s || len(sp.Name) > maxStoreName {
		return fmt.Errorf("%q is not a valid store path (%s/<32 nixbase32 characters>-<name of at most %d characters from [a-zA-Z0-9+._?=-], not starting with a dot>)", s, StoreDir, maxStoreName)
	}
	return nil
}

// maxStoreName is the longest store path name Nix accepts.
const maxStoreName = 211

// rule is a compiled Perm.
type rule struct {
	Perm
	re   *regexp.Regexp
	mode int64 // -1 when unset
}

func (r Perm) compile() (rule, error) {
	if r.Path != "" {
		if err := ValidateStorePath(r.Path); err != nil {
			return rule{}, fmt.Errorf("path: %w", err)
		}
	}
	if r.Regex == "" {
		return rule{}, fmt.Errorf("regex: missing")
	}
	re, err := regexp.Compile(`^(?:` + r.Regex + `)$`)
	if err != nil {
		return rule{}, fmt.Errorf("regex: %q: %w", r.Regex, err)
	}
	c := rule{Perm: r, re: re, mode: -1}
	if r.Mode != "" {
		m, err := strconv.ParseInt(r.Mode, 8, 64)
		if err != nil || m < 0 || m > 0o7777 {
			return rule{}, fmt.Errorf("mode: %q is not an octal mode between 0000 and 7777", r.Mode)
		}
		c.mode = m
	}
	for name, id := range map[string]*int{"uid": r.UID, "gid": r.GID} {
		if id != nil && (*id < 0 || int64(*id) > math.MaxUint32) {
			return rule{}, fmt.Errorf("%s: %d is outside 0…%d", name, *id, uint32(math.MaxUint32))
		}
	}
	return c, nil
}
