package cli

import (
	"github.com/spf13/cobra"
)

// New returns the nixpush root command with every subcommand.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:   "nixpush",
		Short: "Build, verify and push Nix-built container images",
		Long: `nixpush builds container image descriptions with Nix and streams their layers
straight from /nix/store to a registry, skipping every blob the registry has.`,
		SilenceUsage: true,
	}
	root.AddCommand(commands()...)
	return root
}
