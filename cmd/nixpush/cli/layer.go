package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdLayer() *cobra.Command {
	return newBuilderCmd("layer",
		"Write a buildLayer layer file (runs inside Nix builds)",
		`layer is the builder of nix/default.nix's buildLayer. It runs inside a Nix
build with structured attributes: it reads .attrs.json, splits the closure
into layers, hashes them and writes the layer file to outputs.out.`,
		func(ctx context.Context, attrsFile string) error {
			return builder.WriteLayerFile(ctx, attrsFile)
		})
}
