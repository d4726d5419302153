package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/builder"
)

func newCmdNixDB() *cobra.Command {
	return newBuilderCmd("nix-db",
		"Write the Nix database of a buildImage image (runs inside Nix builds)",
		`nix-db is the builder of the Nix database that buildImage puts in an image
with initializeNixDatabase = true. It reads .attrs.json (the image's
attributes), computes the store paths the image holds, as the image builder
does, and writes outputs.out/nix/var/nix/db/db.sqlite registering exactly
those paths, with the schema file and a gcroot for each path.`,
		func(ctx context.Context, attrsFile string) error {
			return builder.WriteNixDB(ctx, attrsFile)
		})
}
