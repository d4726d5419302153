package description

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// withSBOM gives the example an SBOM, as version 3.
func withSBOM(m map[string]any) {
	m["version"] = 3
	m["sbom"] = map[string]any{
		"path":      "/nix/store/0000000000000000000000000000000s-image.json-sbom",
		"mediaType": "application/spdx+json",
		"digest":    digest.FromString("sbom").String(),
		"size":      4,
	}
}

func sbomField(m map[string]any) map[string]any { return m["sbom"].(map[string]any) }

// TestSBOMField: "sbom" is read as version 3 only, and each of its fields
// is checked, errors naming it.
func TestSBOMField(t *testing.T) {
	img, err := Parse(edit(t, withSBOM))
	if err != nil {
		t.Fatal(err)
	}
	if img.SBOM == nil || img.SBOM.Size != 4 || img.NeededVersion() != 3 {
		t.Fatalf("sbom %+v, needs version %d", img.SBOM, img.NeededVersion())
	}
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"version 1", then(withSBOM, func(m map[string]any) { m["version"] = 1 }), "version: 1, but it uses features of version 3 (sbom)"},
		{"version 2", then(withSBOM, func(m map[string]any) { m["version"] = 2 }), "version: 2, but it uses features of version 3 (sbom)"},
		{"inside a store path", then(withSBOM, func(m map[string]any) {
			sbomField(m)["path"] = "/nix/store/0000000000000000000000000000000s-x/../../etc/passwd"
		}), "sbom.path: "},
		{"not in the store", then(withSBOM, func(m map[string]any) { sbomField(m)["path"] = "/etc/passwd" }), `sbom.path: "/etc/passwd" is not below /nix/store`},
		{"media type", then(withSBOM, func(m map[string]any) { sbomField(m)["mediaType"] = "text/plain" }), `sbom.mediaType: "text/plain", want "application/spdx+json"`},
		{"digest", then(withSBOM, func(m map[string]any) { sbomField(m)["digest"] = "sha256:abc" }), "sbom.digest: "},
		{"no digest", then(withSBOM, func(m map[string]any) { delete(sbomField(m), "digest") }), "sbom.digest: missing"},
		{"size 0", then(withSBOM, func(m map[string]any) { sbomField(m)["size"] = 0 }), "sbom.size: 0, want 1 to 134217728 bytes"},
		{"unknown field", then(withSBOM, func(m map[string]any) { sbomField(m)["format"] = "spdx" }), "sbom.format: unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(edit(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant one containing\n  %s", err, c.want)
			}
		})
	}
}
