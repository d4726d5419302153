package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/nixattrs"
	"github.com/nixpush/nixpush/transport/pull"
)

// Environment variables that carry registry credentials into pullImage's
// fixed-output derivation (its impureEnvVars), never into the store.
const (
	// envAuth holds an auth.json (containers-auth.json(5)) itself.
	envAuth = "NIXPUSH_AUTH"
	// envAuthFile names one (it must be readable inside the sandbox).
	envAuthFile = "NIXPUSH_AUTH_FILE"
)

// fetchAttrs are pullImage's structured attributes.
type fetchAttrs struct {
	ImageName   string `json:"imageName"`
	ImageDigest string `json:"imageDigest"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Variant     string `json:"variant"`
	TLSVerify   *bool  `json:"tlsVerify"`
	CACert      string `json:"caCert"`
}

func newCmdFetchImage() *cobra.Command {
	return newBuilderCmd("fetch-image",
		"Fetch an image by digest into an OCI layout (runs inside Nix builds)",
		`fetch-image is the builder of nix/default.nix's pullImage, a fixed-output
derivation. It reads .attrs.json (imageName, imageDigest, os, arch, variant,
tlsVerify, caCert) and fetches imageName@imageDigest into outputs.out as an
OCI layout, every blob as the registry serves it and checked against its
digest. Credentials come from $NIXPUSH_AUTH (an auth.json's contents) or
$NIXPUSH_AUTH_FILE (its path), never from the derivation.`,
		func(ctx context.Context, attrsFile string) error {
			var a fetchAttrs
			_, out, err := nixattrs.Read(attrsFile, &a)
			if err != nil {
				return err
			}
			if a.ImageName == "" {
				return fmt.Errorf("imageName: missing")
			}
			if a.ImageDigest == "" {
				return fmt.Errorf("imageDigest: missing (pin the image with nixpush lock)")
			}
			authFile, cleanup, err := authFromEnv()
			if err != nil {
				return err
			}
			defer cleanup()
			opts := pullOptions(a.OS, a.Arch, a.Variant, a.TLSVerify == nil || *a.TLSVerify, []byte(a.CACert), authFile)
			img, err := pull.Fetch(ctx, a.ImageName+"@"+a.ImageDigest, out, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "fetched %s@%s (%s, manifest %s)\n", img.Name, img.Digest, img.Platform.OS+"/"+img.Platform.Architecture, img.Manifest)
			return nil
		})
}

// authFromEnv returns the auth file given by the environment: $NIXPUSH_AUTH
// written to a private temporary file (removed by cleanup), or
// $NIXPUSH_AUTH_FILE; "" when neither is set.
func authFromEnv() (name string, cleanup func(), err error) {
	cleanup = func() {}
	if s := os.Getenv(envAuth); s != "" {
		dir, err := os.MkdirTemp("", "nixpush-auth-")
		if err != nil {
			return "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		name = filepath.Join(dir, "auth.json")
		if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
			cleanup()
			return "", func() {}, fmt.Errorf("writing $%s to a file: %w", envAuth, err)
		}
		return name, cleanup, nil
	}
	return os.Getenv(envAuthFile), cleanup, nil
}
