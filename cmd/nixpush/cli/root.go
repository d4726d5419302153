package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/redact"
)

// Execute runs nixpush with ctx and prints its error, if any, to stderr:
// with the query string and user information of every URL removed, since
// registry errors carry upload URLs (?_state=…, pre-signed S3 URLs) and
// references may carry user:password@.
func Execute(ctx context.Context) error {
	root := New()
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(root.ErrOrStderr(), "Error:", redact.String(err.Error()))
	}
	return err
}

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
		SilenceUsage:  true,
		SilenceErrors: true, // Execute prints them, redacted
	}
	root.AddCommand(commands()...)
	return root
}
