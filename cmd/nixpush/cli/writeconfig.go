package cli

import (
	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdWriteConfig() *cobra.Command {
	return newBuilderCmd("write-config",
		"Write buildImage's config carrier (runs inside Nix builds)",
		`write-config is the builder of buildImage's config carrier derivation. It
writes the "config" attribute as JSON to outputs.out, so that the output's
references are exactly the store paths the config names.`,
		builder.WriteConfig)
}
