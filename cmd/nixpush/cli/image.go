package cli

import (
	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdImage() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Write a buildImage image description (runs inside Nix builds)",
		Long: `image is the builder of nix/default.nix's buildImage. It runs inside a Nix
build with structured attributes: it reads .attrs.json, stacks the given
layer files and the layers of the rest of the closure, hashes the new ones
and writes the image description to outputs.out.`,
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	attrs := attrsFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		name, err := attrs()
		if err != nil {
			return err
		}
		return builder.WriteImage(cmd.Context(), name)
	}
	return cmd
}
