package layers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// Changed returns the paths whose NAR serialisation no longer hashes to
// their recorded NarHash, or that are missing. Paths without a NarHash are
// not checked. It is the slow path, run only once a layer is known to
// differ, to name the store path at fault.
func Changed(ctx context.Context, paths []Path, opts ...Option) ([]Path, error) {
	o := makeOptions(opts)
	var changed []Path
	seen := map[string]bool{}
	for _, p := range paths {
		if p.NarHash == "" || seen[p.Path] {
			continue
		}
		seen[p.Path] = true
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want, err := parseNarHash(p.NarHash)
		if err != nil {
			return nil, fmt.Errorf("store path %s: narHash: %w", p.Path, err)
		}
		host := o.root + p.Path
		if _, err := os.Lstat(host); os.IsNotExist(err) {
			changed = append(changed, p)
			continue
		}
		h := sha256.New()
		if err := nar.DumpPath(h, host); err != nil {
			return nil, fmt.Errorf("hashing store path %s: %w", p.Path, err)
		}
		if !bytes.Equal(h.Sum(nil), want) {
			changed = append(changed, p)
		}
	}
	return changed, nil
}

// parseNarHash accepts Nix's spellings of a sha256 NAR hash
// (sha256:<base32>, sha256-<base64>, …) and returns its bytes.
func parseNarHash(s string) ([]byte, error) {
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if h.Algo() != nixhash.SHA256 {
		return nil, fmt.Errorf("%q: want a sha256 hash, got %s", s, h.Algo())
	}
	return h.Digest(), nil
}
