package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/transport"
)

func newCmdSBOM() *cobra.Command {
	return &cobra.Command{
		Use:   "sbom nix:IMAGE.json",
		Short: "Print a nix: image's SBOM (SPDX 2.3 JSON), checked against its digest",
		Long: `sbom prints the SBOM buildImage wrote for the image: an SPDX 2.3 JSON document
listing each store path of the image (name, version, NAR hash) and the
references between them, with the image's manifest digest as its subject.
It is read from the store path the description names (confined, never
through a symlink) and printed only if it still has the digest and size the
description records. copy and push attach it to the pushed manifest as an
OCI referrer (see --no-sbom).`,
		Example: `  nixpush sbom nix:./result > image.spdx.json
  nixpush sbom nix:./result | jq -r '.packages[].name'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := transport.NewReference(strings.TrimPrefix(args[0], transport.Name+":"))
			if err != nil {
				return err
			}
			b, err := ref.Built().SBOM()
			if err != nil {
				return fmt.Errorf("reading the SBOM of %s: %w", args[0], err)
			}
			if b == nil {
				return errors.New(args[0] + ": the image description has no SBOM (built with sbom = false, or by an older nixpush)")
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}
