package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdIndex() *cobra.Command {
	return newBuilderCmd("index",
		"Write a buildIndex index description (runs inside Nix builds)",
		`index is the builder of nix/default.nix's buildIndex. It runs inside a Nix
build with structured attributes: it reads .attrs.json, reads each image
description of "images" from the store, and writes the index description,
with each image's manifest digest, size and platform and the index's own
digest, to outputs.out.`,
		func(ctx context.Context, attrsFile string) error {
			return builder.WriteIndex(ctx, attrsFile)
		})
}
