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
		Example: `  # Build an image description with Nix, then push it
  nix-build -A image && nixpush copy nix:./result docker://registry.example.com/app:v1

  # Look inside it, and check it still matches the store
  nixpush inspect nix:./result
  nixpush verify ./result`,
		SilenceUsage: true,
	}
	root.AddCommand(commands()...)
	return root
}
