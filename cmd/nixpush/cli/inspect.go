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
		Short: "Show a nix: image's layers, store paths, config and manifest digest (an index's platforms)",
		Long: `inspect shows what pushing a nix: image will put in a registry: the manifest
digest, each layer's digest, size and store paths, and the image config. It
reads only the image description, never the layers' contents.

For an index description (buildIndex), it shows the index digest, its
annotations and each platform with its manifest digest and image
description; --json gives each image in full too.`,
		Example: `  # What will go to the registry, after nix-build wrote ./result
  nixpush inspect nix:./result

  # The manifest digest alone, e.g. to sign before pushing
  nixpush inspect --json nix:./result | jq -r .manifestDigest

  # An index: its digest, and each platform's manifest digest
  nixpush inspect --json nix:./result | jq -r '.indexDigest, .manifests[].manifestDigest'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := transport.NewReference(strings.TrimPrefix(args[0], transport.Name+":"))
			if err != nil {
				return err
			}
			if bi := ref.Index(); bi != nil {
				info := transport.InspectIndex(bi)
				if asJSON {
					return info.WriteJSON(cmd.OutOrStdout())
				}
				return info.WriteText(cmd.OutOrStdout())
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
