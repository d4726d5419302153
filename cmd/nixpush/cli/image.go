package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdImage() *cobra.Command {
	return newBuilderCmd("image",
		"Write a buildImage image description (runs inside Nix builds)",
		`image is the builder of nix/default.nix's buildImage. It runs inside a Nix
build with structured attributes: it reads .attrs.json, stacks the given
layer files and the layers of the rest of the closure, hashes the new ones
and writes the image description to outputs.out.`,
		func(ctx context.Context, attrsFile string) error {
			return builder.WriteImage(ctx, attrsFile)
		})
}
