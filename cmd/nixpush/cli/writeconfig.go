package cli

import (
	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdWriteConfig() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "write-config",
		Short: "Write buildImage's config carrier (runs inside Nix builds)",
		Long: `write-config is the builder of buildImage's config carrier derivation. It
writes the "config" attribute as JSON to outputs.out, so that the output's
references are exactly the store paths the config names.`,
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	attrs := attrsFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		name, err := attrs()
		if err != nil {
			return err
		}
		return builder.WriteConfig(cmd.Context(), name)
	}
	return cmd
}
