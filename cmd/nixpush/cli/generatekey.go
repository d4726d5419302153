package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/transport/registry"
)

func newCmdGenerateSigstoreKey() *cobra.Command {
	var prefix, passphraseFile string
	cmd := &cobra.Command{
		Use:   "generate-sigstore-key --output-prefix PREFIX",
		Short: "Make a sigstore key pair for --sign-by-sigstore-private-key (skopeo's command)",
		Long: `generate-sigstore-key makes a key pair with containers/image's generator, as
skopeo generate-sigstore-key does: PREFIX.private, the private key encrypted
with a passphrase (cosign's format; mode 0600), and PREFIX.pub, the public
key that skopeo's policy.json ("sigstoreSigned", "keyPath") and cosign verify
with. The passphrase comes from the first line of --passphrase-file or is
asked twice at the terminal; it is never an argument. Existing files are not
overwritten.`,
		Example: `  nixpush generate-sigstore-key --output-prefix release --passphrase-file pass.txt
  nixpush copy --sign-by-sigstore-private-key release.private --sign-passphrase-file pass.txt nix:result docker://registry.example.com/app:v1
  cosign verify --key release.pub --insecure-ignore-tlog registry.example.com/app:v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if prefix == "" {
				return fmt.Errorf("--output-prefix is required")
			}
			pass, err := readPassphrase(cmd, passphraseFile, "--passphrase-file", "Passphrase for the new key: ", true)
			if err != nil {
				return err
			}
			priv, pub, err := registry.GenerateSigstoreKey(prefix, pass)
			clear(pass)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Key written to %s and %s\n", priv, pub)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "output-prefix", "", "write the key pair to `PREFIX`.private and PREFIX.pub")
	f.StringVar(&passphraseFile, "passphrase-file", "", "read the passphrase of the new key from the first line of `FILE` (default: ask at the terminal)")
	return cmd
}
