package builder

import (
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/layers/sbom"
)

// writeSBOM writes the SPDX document of img to the "sbom" output and
// records it in img (which becomes version 3). Its subject is the manifest
// digest img encodes to; its DEPENDS_ON relationships come from the
// closure graph g and, for the store paths of layer files, from the
// layersClosure graph.
func writeSBOM(a *Attrs, img *description.Image, g *closure.Graph) error {
	graphs := []*closure.Graph{g}
	if len(a.LayersClosure) > 0 {
		lg, err := closure.Parse(a.LayersClosure)
		if err != nil {
			return fmt.Errorf("layersClosure: %w", err)
		}
		graphs = append(graphs, lg)
	}
	_, m, err := img.Encode()
	if err != nil {
		return err
	}
	b, err := sbom.SPDX(sbom.Input{
		Image:    img,
		Manifest: m.Digest,
		References: func(p string) ([]string, bool) {
			for _, g := range graphs {
				if g.Has(p) {
					return g.References(p), true
				}
			}
			return nil, false
		},
	})
	if err != nil {
		return fmt.Errorf("image %s: SBOM: %w", a.ImageName, err)
	}
	if err := os.WriteFile(a.Outputs.SBOM, b, 0o644); err != nil {
		return fmt.Errorf("writing the SBOM: %w", err)
	}
	img.SBOM = &description.Attachment{
		Path:      a.Outputs.SBOM,
		MediaType: description.MediaTypeSPDX,
		Digest:    digest.FromBytes(b),
		Size:      int64(len(b)),
	}
	img.Version = img.NeededVersion()
	if err := img.Validate(); err != nil {
		return fmt.Errorf("image %s: %w", a.ImageName, err)
	}
	return nil
}
