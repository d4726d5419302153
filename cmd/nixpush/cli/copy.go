package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport/push"
)

func newCmdCopy() *cobra.Command {
	var (
		authFile, srcCreds, destCreds string
		srcTLS, destTLS               bool
		srcCertDir, destCertDir       string
		srcDaemon, destDaemon         string
		digestFile, policy            string
		retryTimes, parallel          int
		retryDelay                    time.Duration
		quiet                         bool
		tags, mountFrom               []string
		insecureHosts                 []string
		srcPW                         = passwordSource{flag: "src-password-stdin", env: envSrcPassword}
		destPW                        = passwordSource{flag: "dest-password-stdin", env: envDestPassword}
	)
	cmd := &cobra.Command{
		Use:   "copy [flags] SRC DEST",
		Short: "Copy an image, such as nix:/nix/store/…-image.json to docker://registry/repo:tag",
		Long: `copy copies an image between any containers/image locations (nix:, docker://,
oci:, oci-archive:, dir:, docker-archive:), like skopeo copy.

From nix:, layers go from /nix/store straight to the destination, hashed as
they stream, and only when the destination lacks them: a registry is asked
for each blob's digest first, so a re-push uploads nothing, with no local
cache. Layers and manifest are kept exactly as described. On a layer that no
longer matches its description, no manifest is written and the error names
the layer and the store paths that changed.

Progress goes to stderr; the last line on stdout is the manifest digest.
Credentials come from --authfile (default $REGISTRY_AUTH_FILE), the usual
auth.json and docker config.json files, credential helpers, or --src-creds
and --dest-creds USER with the password on stdin (--dest-password-stdin),
in $NIXPUSH_DEST_PASSWORD ($NIXPUSH_SRC_PASSWORD) or typed at a terminal
prompt. Credentials are never sent without TLS verification
(--dest-tls-verify=false, which also allows plain HTTP) except to a loopback
address or a host named with --insecure-creds-host.`,
		Example: `  nix-build -A image   # result -> /nix/store/…-image-app.json
  nixpush copy nix:result docker://registry.example.com/app:v1 --additional-tag latest
  nixpush copy --authfile ci-auth.json --digestfile app.digest nix:result docker://registry.example.com/app:v1
  printf '%s' "$TOKEN" | nixpush copy --dest-creds ci --dest-password-stdin nix:result docker://registry.example.com/app:v1
  nixpush copy nix:result oci-archive:app.tar:v1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if authFile == "" {
				authFile = os.Getenv("REGISTRY_AUTH_FILE")
			}
			opts := []push.Option{
				push.WithAuthFile(authFile),
				push.WithSourceCertDir(srcCertDir),
				push.WithDestinationCertDir(destCertDir),
				push.WithSourceDaemonHost(srcDaemon),
				push.WithDestinationDaemonHost(destDaemon),
				push.WithRetry(retryTimes, retryDelay),
				push.WithPolicyFile(policy),
				push.WithAdditionalTags(tags...),
				push.WithMountFrom(mountFrom...),
				push.WithParallel(parallel),
				push.WithInsecureCredentialsHosts(insecureHosts...),
			}
			if cmd.Flags().Changed("src-tls-verify") {
				opts = append(opts, push.WithSourceTLSVerify(srcTLS))
			}
			if cmd.Flags().Changed("dest-tls-verify") {
				opts = append(opts, push.WithDestinationTLSVerify(destTLS))
			}
			creds, err := copyCredentials(cmd, []copyCreds{
				{"src-creds", srcCreds, &srcPW, push.WithSourceCredentials},
				{"dest-creds", destCreds, &destPW, push.WithDestinationCredentials},
			})
			if err != nil {
				return err
			}
			opts = append(opts, creds...)
			if !quiet {
				tty := cmd.ErrOrStderr() == os.Stderr && term.IsTerminal(int(os.Stderr.Fd()))
				opts = append(opts, push.WithProgress(redact.Writer(cmd.ErrOrStderr()), tty, 0))
			}
			res, err := push.Copy(cmd.Context(), args[0], args[1], opts...)
			if err != nil {
				return err
			}
			if digestFile != "" {
				if err := os.WriteFile(digestFile, []byte(res.Digest.String()), 0o644); err != nil {
					return fmt.Errorf("writing --digestfile: %w", err)
				}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&authFile, "authfile", "", "path of the authentication `FILE` (default $REGISTRY_AUTH_FILE, then the usual auth.json and docker config.json)")
	f.StringVar(&srcCreds, "src-creds", "", "log in as `USER` to the source registry, with the password from --src-password-stdin, $"+envSrcPassword+" or a terminal prompt (USER:PASSWORD also works, but shows in the process list)")
	f.StringVar(&destCreds, "dest-creds", "", "log in as `USER` to the destination registry, with the password from --dest-password-stdin, $"+envDestPassword+" or a terminal prompt (USER:PASSWORD also works, but shows in the process list)")
	f.BoolVar(&srcPW.stdin, "src-password-stdin", false, "read the password of --src-creds from stdin")
	f.BoolVar(&destPW.stdin, "dest-password-stdin", false, "read the password of --dest-creds from stdin")
	f.StringArrayVar(&insecureHosts, "insecure-creds-host", nil, "allow credentials to go to registry `HOST` without TLS verification (plain HTTP with --*-tls-verify=false); loopback addresses need no flag; repeatable")
	f.BoolVar(&srcTLS, "src-tls-verify", true, "require HTTPS and verify certificates when talking to the source registry (false: also plain HTTP)")
	f.BoolVar(&destTLS, "dest-tls-verify", true, "require HTTPS and verify certificates when talking to the destination registry (false: also plain HTTP)")
	f.StringVar(&srcCertDir, "src-cert-dir", "", "use certificates at `DIR` (*.crt, *.cert, *.key) to connect to the source registry")
	f.StringVar(&destCertDir, "dest-cert-dir", "", "use certificates at `DIR` (*.crt, *.cert, *.key) to connect to the destination registry")
	// Docker's own clients honour DOCKER_HOST; containers/image does not,
	// so the flags default to it.
	f.StringVar(&srcDaemon, "src-daemon-host", os.Getenv("DOCKER_HOST"), "use docker daemon `HOST` for a docker-daemon: source (default $DOCKER_HOST)")
	f.StringVar(&destDaemon, "dest-daemon-host", os.Getenv("DOCKER_HOST"), "use docker daemon `HOST` for a docker-daemon: destination (default $DOCKER_HOST)")
	f.StringVar(&digestFile, "digestfile", "", "write the digest of the pushed manifest to `FILE`")
	f.IntVar(&retryTimes, "retry-times", 0, "number of times to retry a failed copy")
	f.DurationVar(&retryDelay, "retry-delay", 0, "fixed delay between retries (default exponential backoff from 1s)")
	f.StringVar(&policy, "policy", "", "signature policy `FILE` (default: accept any image)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print no progress")
	f.StringArrayVar(&tags, "additional-tag", nil, "also tag the image as `TAG` (a tag, or a full REGISTRY/REPO:TAG on the destination's registry); repeatable")
	f.StringArrayVar(&mountFrom, "mount-from", nil, "`REPO` of the destination registry that may hold the image's blobs: mount them from there instead of uploading; repeatable")
	f.IntVar(&parallel, "parallel", push.DefaultParallel, "number of blobs copied at once")
	return cmd
}

// copyCreds is one side's credentials flag.
type copyCreds struct {
	flag, value string
	src         *passwordSource
	with        func(user, password string) push.Option
}

// copyCredentials turns --src-creds and --dest-creds into options, reading
// the passwords they leave out.
func copyCredentials(cmd *cobra.Command, sides []copyCreds) ([]push.Option, error) {
	if sides[0].src.stdin && sides[1].src.stdin {
		return nil, errBothStdin
	}
	p := &passwords{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
	var opts []push.Option
	for _, c := range sides {
		if c.value != "" {
			user, password, err := p.userPassword(c.flag, c.value, c.src)
			if err != nil {
				return nil, err
			}
			opts = append(opts, c.with(user, password))
		}
		if err := c.src.checkUsed(); err != nil {
			return nil, err
		}
	}
	return opts, nil
}
