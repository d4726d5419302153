package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// attrsFlag adds --attrs to a builder command and returns a function giving
// the file to read: the flag, or $NIX_BUILD_TOP/.attrs.json. Nix 2.8 sets
// NIX_ATTRS_JSON_FILE to a host path the sandbox cannot open, so it is not
// used.
func attrsFlag(cmd *cobra.Command) func() (string, error) {
	var name string
	cmd.Flags().StringVar(&name, "attrs", "", "structured attributes file (default $NIX_BUILD_TOP/.attrs.json)")
	return func() (string, error) {
		if name != "" {
			return name, nil
		}
		top := os.Getenv("NIX_BUILD_TOP")
		if top == "" {
			return "", fmt.Errorf("NIX_BUILD_TOP is not set: this command runs inside a Nix build; pass --attrs to run it elsewhere")
		}
		return filepath.Join(top, ".attrs.json"), nil
	}
}

// newBuilderCmd makes a hidden command that runs inside a Nix build: it
// finds the structured attributes file and hands it to run.
func newBuilderCmd(use, short, long string, run func(ctx context.Context, attrsFile string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:    use,
		Short:  short,
		Long:   long,
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	attrs := attrsFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		name, err := attrs()
		if err != nil {
			return err
		}
		return run(cmd.Context(), name)
	}
	return cmd
}
