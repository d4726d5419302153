package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nixpush/nixpush/transport/registry"
)

// signFlags are skopeo's sigstore signing flags, which copy and push share.
type signFlags struct {
	keyFile, passphraseFile string
}

func (s *signFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.keyFile, "sign-by-sigstore-private-key", "", "sign every manifest written with the sigstore private key in `FILE` (see generate-sigstore-key), stored as a sigstore attachment where cosign and skopeo look")
	f.StringVar(&s.passphraseFile, "sign-passphrase-file", "", "read the passphrase of the signing key from the first line of `FILE` (default: ask at the terminal)")
}

// signer returns the options that sign with the key, and the signer to
// close when done; none without --sign-by-sigstore-private-key. The key
// is decrypted here, before anything is pushed.
func (s *signFlags) signer(cmd *cobra.Command) ([]registry.Option, *registry.Signer, error) {
	if s.keyFile == "" {
		if s.passphraseFile != "" {
			return nil, nil, errors.New("--sign-passphrase-file: no key to sign with (--sign-by-sigstore-private-key)")
		}
		return nil, nil, nil
	}
	pass, err := readPassphrase(cmd, s.passphraseFile, "--sign-passphrase-file", "Passphrase for "+s.keyFile+": ", false)
	if err != nil {
		return nil, nil, err
	}
	sg, err := registry.NewSigstoreSigner(s.keyFile, pass)
	clear(pass)
	if err != nil {
		return nil, nil, err
	}
	return []registry.Option{registry.WithSigner(sg)}, sg, nil
}

// readPassphrase reads a passphrase from the first line of file, or else
// from the terminal (twice when confirm), never from the arguments.
func readPassphrase(cmd *cobra.Command, file, flag, prompt string, confirm bool) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase (%s): %w", flag, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		return []byte(strings.TrimSuffix(line, "\r")), nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, fmt.Errorf("no passphrase: give it in a file (%s), or run at a terminal", flag)
	}
	ask := func(p string) ([]byte, error) {
		fmt.Fprint(cmd.ErrOrStderr(), p)
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		return b, nil
	}
	pass, err := ask(prompt)
	if err != nil || !confirm {
		return pass, err
	}
	again, err := ask("Repeat it: ")
	if err != nil {
		return nil, err
	}
	if string(again) != string(pass) {
		return nil, errors.New("the passphrases differ")
	}
	return pass, nil
}
