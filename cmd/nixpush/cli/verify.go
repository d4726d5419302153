package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/description"
)

func newCmdVerify() *cobra.Command {
	var remote remoteFlags
	cmd := &cobra.Command{
		Use:   "verify IMAGE.json|INDEX.json [docker://REGISTRY/REPO:TAG]",
		Short: "Check an image against the store, or check that a registry serves exactly its manifest",
		Long: `With one argument, verify reads an image description, re-creates every
layer's blob from /nix/store (its tar, compressed again when the layer is
compressed) and compares its digest and size with those recorded when Nix
built the description. On a mismatch it names the layer and the store paths
whose NAR hash no longer matches, and exits non-zero. For an index
description, it checks that each image still builds to the manifest the index
names, then verifies every image.

With a docker:// reference as well (a tag or a digest), verify asks the
registry for the manifest the reference resolves to and compares it with the
one the description builds, without reading the store: "identical" and exit
0 only when the digests match, and then nothing else is fetched. Otherwise it
prints what differs and exits non-zero: manifest fields, config fields by
their JSON path (the registry's config is fetched only when the config
digests differ), and layers by index with the store paths the description's
layer holds. No layer is downloaded. This is the auditor's check: rebuild the
image from source with Nix, then verify it against what is deployed.`,
		Example: `  # Check an image built by Nix before pushing it
  nixpush verify ./result

  # nix: references are accepted too
  nixpush verify nix:/nix/store/…-hello.json

  # Does the registry serve exactly this build?
  nixpush verify nix:./result docker://registry.example.com/app:v1`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimPrefix(args[0], "nix:")
			if len(args) == 2 {
				if !strings.HasPrefix(args[1], "docker://") {
					return fmt.Errorf("verify %s: want a docker://REGISTRY/REPO:TAG reference", args[1])
				}
				return remote.verifyRemote(cmd, name, args[1])
			}
			// The registry's flags mean nothing without a registry: say so
			// rather than leave, say, --password-stdin unread.
			for _, flag := range []string{"authfile", "creds", "password-stdin", "tls-verify", "cert-dir", "insecure-creds-host", "json"} {
				if cmd.Flags().Changed(flag) {
					return fmt.Errorf("--%s is for verifying against a registry (verify IMAGE docker://REF); %s names none", flag, args[0])
				}
			}
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
	remote.add(cmd)
	return cmd
}

// verifyIndex verifies every image of an index: each must build to the
// manifest the index names (ReadImages), and each layer must match.
func verifyIndex(ctx context.Context, out io.Writer, name string, idx *description.Index) error {
	imgs, err := idx.ReadImages()
	if err != nil {
		return fmt.Errorf("verifying %s: %w", name, err)
	}
	// Each layer is made again once, however many images share it: a
	// layer is shared when its whole description is (two images may
	// describe one digest differently, and one of them is wrong).
	var all description.Image
	at := make([][]int, len(imgs)) // at[i][j]: image i's layer j in all
	seen := map[string]int{}
	for i, img := range imgs {
		for _, l := range img.Layers {
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			k, ok := seen[string(b)]
			if !ok {
				k = len(all.Layers)
				seen[string(b)] = k
				all.Layers = append(all.Layers, l)
			}
			at[i] = append(at[i], k)
		}
	}
	failed := make([]error, len(all.Layers))
	all.Verify(ctx, func(k int, err error) { failed[k] = err }) //nolint:errcheck // each failure is in failed
	var errs []error
	for i, img := range imgs {
		m := idx.Manifests[i]
		var lerrs []error
		for j := range img.Layers {
			if err := failed[at[i][j]]; err != nil {
				lerrs = append(lerrs, &description.LayerError{Index: j, Layer: &img.Layers[j], Err: err})
			}
		}
		if len(lerrs) > 0 {
			errs = append(errs, fmt.Errorf("manifests[%d] (%s, %s):\n%w", i, m.Platform, m.Image, errors.Join(lerrs...)))
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
