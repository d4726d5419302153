package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/description"
)

func newCmdVerify() *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE.json",
		Short: "Re-stream every layer from the store and check it against its recorded digest",
		Long: `Verify reads an image description, re-creates every layer's blob from
/nix/store (its tar, compressed again when the layer is compressed) and
compares its digest and size with those recorded when Nix built the
description. On a mismatch it names the layer and the store paths whose NAR
hash no longer matches, and exits non-zero.`,
		Example: `  # Check an image built by Nix before pushing it
  nixpush verify ./result

  # nix: references are accepted too
  nixpush verify nix:/nix/store/…-hello.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimPrefix(args[0], "nix:")
			img, err := description.ReadFile(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			err = img.Verify(cmd.Context(), func(i int, err error) {
				l := img.Layers[i]
				switch {
				case err == nil && l.Blob != nil:
					fmt.Fprintf(out, "layer %d %s ok (%d bytes, blob %s/%s)\n", i, l.Digest, l.Size, l.Blob.Path, l.Blob.File)
				case err == nil:
					fmt.Fprintf(out, "layer %d %s ok (%d bytes, %d store paths)\n", i, l.Digest, l.Size, len(l.Paths))
				}
			})
			if err != nil {
				return fmt.Errorf("verifying %s:\n%w", name, err)
			}
			fmt.Fprintf(out, "all %d layers of %s match\n", len(img.Layers), name)
			return nil
		},
	}
}
