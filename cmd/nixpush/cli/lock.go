package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/transport/pull"
)

func newCmdLock() *cobra.Command {
	var (
		osName, arch, variant string
		authFile, caCert      string
		tlsVerify             bool
	)
	cmd := &cobra.Command{
		Use:   "lock docker://REF",
		Short: "Pin a base image: print pullImage's imageName, imageDigest and sha256 as JSON",
		Long: `lock resolves REF (a tag, or a digest) to a digest, fetches the image for the
platform exactly as pullImage does, into a temporary directory that it then
removes, and prints the arguments of np.pullImage as JSON: imageName,
imageDigest, sha256 (the NAR hash of the layout pullImage writes), os, arch
and variant. Save it and read it with np.pullImageFromLock ./base.lock.json.

A tag naming an index pins the index's digest; the platform's manifest is
chosen from it when pulling.`,
		Example: `  # Pin the amd64 image of a tag
  nixpush lock docker://registry.example.com/base:3.20 > base.lock.json

  # The arm64 image of the same index
  nixpush lock --arch arm64 docker://registry.example.com/base:3.20`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, ok := strings.CutPrefix(args[0], "docker://")
			if !ok {
				return fmt.Errorf("%q: lock takes a docker://REF", args[0])
			}
			var pem []byte
			if caCert != "" {
				var err error
				if pem, err = os.ReadFile(caCert); err != nil {
					return fmt.Errorf("--ca-cert: %w", err)
				}
			}
			opts := pullOptions(osName, arch, variant, tlsVerify, pem, authFilePath(authFile))
			l, err := pull.MakeLock(cmd.Context(), ref, opts...)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(l)
		},
	}
	f := cmd.Flags()
	f.StringVar(&osName, "os", "linux", "`OS` of the image to pin")
	f.StringVar(&arch, "arch", runtime.GOARCH, "`ARCH`itecture of the image to pin (GOARCH spelling: amd64, arm64)")
	f.StringVar(&variant, "variant", "", "CPU `VARIANT` of the image to pin (v8 for arm64, …)")
	f.StringVar(&authFile, "authfile", "", "path of the authentication `FILE` (default $REGISTRY_AUTH_FILE, then the usual auth.json and docker config.json)")
	f.StringVar(&caCert, "ca-cert", "", "trust the PEM CA certificates in `FILE` too (pullImage's caCert)")
	f.BoolVar(&tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (false: also plain HTTP; credentials then go only to loopback registries)")
	return cmd
}

// pullOptions are the options of a pull (lock, fetch-image): the
// platform, TLS verification, the User-Agent, and a CA certificate (PEM)
// and an auth file when given.
func pullOptions(osName, arch, variant string, tlsVerify bool, caCert []byte, authFile string) []pull.Option {
	opts := []pull.Option{
		pull.WithPlatform(osName, arch, variant),
		pull.WithTLSVerify(tlsVerify),
		pull.WithUserAgent(userAgent()),
	}
	if len(caCert) > 0 {
		opts = append(opts, pull.WithCACert(caCert))
	}
	if authFile != "" {
		opts = append(opts, pull.WithAuthFile(authFile))
	}
	return opts
}
