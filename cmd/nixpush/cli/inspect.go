package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/transport"
)

func newCmdInspect() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [--json] nix:IMAGE.json",
		Short: "Show a nix: image's layers, store paths, config and manifest digest",
		Long: `inspect shows what pushing a nix: image will put in a registry: the manifest
digest, each layer's digest, size and store paths, and the image config. It
reads only the image description, never the layers' contents.`,
		Example: `  # What will go to the registry, after nix-build wrote ./result
  nixpush inspect nix:./result

  # The manifest digest alone, e.g. to sign before pushing
  nixpush inspect --json nix:./result | jq -r .manifestDigest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := transport.NewReference(strings.TrimPrefix(args[0], transport.Name+":"))
			if err != nil {
				return err
			}
			info := transport.Inspect(ref.Built())
			if asJSON {
				return info.WriteJSON(cmd.OutOrStdout())
			}
			return info.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: digests, layers, and the config and manifest as pushed")
	return cmd
}
