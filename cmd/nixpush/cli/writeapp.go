package cli

import (
	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/nixapp"
)

func newCmdWriteApp() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "write-app",
		Short: "Write a flake app script of nix/apps.nix (runs inside Nix builds)",
		Long: `write-app is the builder of the apps nix/apps.nix attaches to every image
(copyToRegistry, copyTo, copyToPodman, copyToDockerDaemon). It writes the
"script" attribute to outputs.out/bin/<program>, executable.`,
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	attrs := attrsFlag(cmd)
	cmd.RunE = func(_ *cobra.Command, _ []string) error {
		name, err := attrs()
		if err != nil {
			return err
		}
		_, err = nixapp.WriteFile(name)
		return err
	}
	return cmd
}
