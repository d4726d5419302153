package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/description"
)

func newCmdVerify() *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE.json|INDEX.json",
		Short: "Re-stream every layer from the store and check it against its recorded digest",
		Long: `Verify reads an image description, re-creates every layer's blob from
/nix/store (its tar, compressed again when the layer is compressed) and
compares its digest and size with those recorded when Nix built the
description. On a mismatch it names the layer and the store paths whose NAR
hash no longer matches, and exits non-zero. For an index description, it
checks that each image still builds to the manifest the index names, then
verifies every image.`,
		Example: `  # Check an image built by Nix before pushing it
  nixpush verify ./result

  # nix: references are accepted too
  nixpush verify nix:/nix/store/…-hello.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimPrefix(args[0], "nix:")
			img, idx, err := description.ReadAnyFile(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if idx != nil {
				return verifyIndex(cmd.Context(), out, name, idx)
			}
			err = img.Verify(cmd.Context(), func(i int, err error) {
				l := img.Layers[i]
				if err == nil {
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

// verifyIndex verifies every image of an index: each must build to the
// manifest the index names (ReadImages), and each layer must match.
func verifyIndex(ctx context.Context, out io.Writer, name string, idx *description.Index) error {
	imgs, err := idx.ReadImages()
	if err != nil {
		return fmt.Errorf("verifying %s: %w", name, err)
	}
	var errs []error
	for i, img := range imgs {
		m := idx.Manifests[i]
		if err := img.Verify(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("manifests[%d] (%s, %s):\n%w", i, m.Platform, m.Image, err))
			continue
		}
		fmt.Fprintf(out, "%s %s ok: all %d layers match (%s)\n", m.Platform, m.Digest, len(img.Layers), m.Image)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("verifying %s:\n%w", name, err)
	}
	fmt.Fprintf(out, "all %d images of %s match\n", len(imgs), name)
	return nil
}
