package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/remoteverify"
)

// remoteFlags say how `verify IMAGE DEST` reaches the registry.
type remoteFlags struct {
	authFile, certDir, creds string
	tlsVerify, jsonOut       bool
	insecureHosts            []string
	pw                       passwordSource
}

func (r *remoteFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.authFile, "authfile", "", "path of the authentication `FILE` for the registry (default $REGISTRY_AUTH_FILE, then the usual auth.json and docker config.json)")
	f.StringVar(&r.creds, "creds", "", "log in as `USER` to the registry, with the password from --password-stdin, $"+envSrcPassword+" or a terminal prompt")
	f.BoolVar(&r.pw.stdin, "password-stdin", false, "read the password of --creds from stdin")
	f.BoolVar(&r.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates when talking to the registry (false: also plain HTTP)")
	f.StringVar(&r.certDir, "cert-dir", "", "use certificates at `DIR` (*.crt, *.cert, *.key) to connect to the registry")
	f.StringArrayVar(&r.insecureHosts, "insecure-creds-host", nil, "allow credentials to go to registry `HOST` without TLS verification; repeatable")
	f.BoolVar(&r.jsonOut, "json", false, "print the comparison as JSON")
	r.pw.flag, r.pw.env = "password-stdin", envSrcPassword
}

// verifyRemote compares the manifest dest serves with the one the
// description src builds; it fails when they differ.
func (r *remoteFlags) verifyRemote(cmd *cobra.Command, src, dest string) error {
	ref, err := transport.NewReference(src)
	if err != nil {
		return err
	}
	opts := accessOptions(r.authFile, r.certDir, r.insecureHosts)
	if cmd.Flags().Changed("tls-verify") {
		opts = append(opts, registry.WithTLSVerify(r.tlsVerify))
	}
	if r.creds != "" {
		p := &passwords{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
		user, password, err := p.userPassword("creds", r.creds, &r.pw)
		if err != nil {
			return err
		}
		opts = append(opts, registry.WithCredentials(user, password))
	}
	if err := r.pw.checkUsed(); err != nil {
		return err
	}
	var res *remoteverify.Result
	if bi := ref.Index(); bi != nil {
		res, err = remoteverify.CompareIndex(cmd.Context(), bi, dest, opts...)
	} else {
		res, err = remoteverify.Compare(cmd.Context(), ref.Built(), dest, opts...)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if r.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.WriteText(out, "nix:"+src); err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("verifying nix:%s against %s: %w", src, dest, err)
	}
	return nil
}
