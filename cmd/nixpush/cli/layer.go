package cli

import (
	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdLayer() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "layer",
		Short: "Write a buildLayer layer file (runs inside Nix builds)",
		Long: `layer is the builder of nix/default.nix's buildLayer. It runs inside a Nix
build with structured attributes: it reads .attrs.json, splits the closure
into layers, hashes them and writes the layer file to outputs.out.`,
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	attrs := attrsFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		name, err := attrs()
		if err != nil {
			return err
		}
		return builder.WriteLayerFile(cmd.Context(), name)
	}
	return cmd
}
