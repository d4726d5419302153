package builder

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// storePathRe matches a store path inside a longer string: the hash part
// uses Nix's base32 alphabet, the name the characters Nix allows.
var storePathRe = regexp.MustCompile(`/nix/store/[0-9abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+\-._?=]+`)

// checkConfigRefs fails when the config names a store path that no layer
// places at its store path: the container would not find it. That happens
// when a store path reaches the config as a string without context.
func checkConfigRefs(raw []byte, ls []description.Layer) error {
	in := map[string]bool{}
	for _, l := range ls {
		for _, p := range l.Paths {
			if p.Rewrite == "" {
				in[p.Path] = true
			}
		}
	}
	var missing []string
	seen := map[string]bool{}
	for _, m := range storePathRe.FindAllString(string(raw), -1) {
		if !seen[m] && !in[m] && layers.ValidateStorePath(m) == nil {
			missing = append(missing, m)
		}
		seen[m] = true
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("config: names %s, which the image does not hold at its store path (was it given as a string without context? use \"${pkg}/bin/…\")",
		strings.Join(missing, ", "))
}
