package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// Version is set at link time (-ldflags "-X …/cli.Version=v1.2.3"); without
// it, the module version from the build info is used.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// userAgentVersion is version() as a User-Agent product version: "devel"
// for a local build.
func userAgentVersion() string {
	v := version()
	if v == "(devel)" {
		return "devel"
	}
	return v
}

func newCmdVersion() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print nixpush's version, tar format version and description version",
		Example: "  nixpush version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "nixpush %s\ntar format %d\ndescription version %d\n",
				version(), layers.FormatVersion, description.Version)
			return nil
		},
	}
}
