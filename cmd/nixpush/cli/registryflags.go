package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport/registry"
)

// registryFlags are the flags copy and push share: how registries are
// reached and how a push goes. Both turn them into the same
// registry.Options.
type registryFlags struct {
	authFile, certDir string
	tlsVerify, quiet  bool
	insecureHosts     []string
	retryTimes        int
	retryDelay        time.Duration
	timeout           time.Duration
	parallel          int
	noSBOM            bool
}

// add registers the flags; retryTimes is the command's default.
func (r *registryFlags) add(cmd *cobra.Command, retryTimes int) {
	f := cmd.Flags()
	f.StringVar(&r.authFile, "authfile", "", "path of the authentication `FILE` (default $REGISTRY_AUTH_FILE, then the usual auth.json and docker config.json); each entry is for its registry")
	f.StringArrayVar(&r.insecureHosts, "insecure-creds-host", nil, "allow credentials to go to registry `HOST` without TLS verification (plain HTTP with --dest-tls-verify=false); loopback addresses need no flag; repeatable")
	f.BoolVar(&r.tlsVerify, "dest-tls-verify", true, "require HTTPS and verify certificates when talking to the destination registries (false: also plain HTTP; no credentials then, except to loopback or --insecure-creds-host)")
	f.StringVar(&r.certDir, "dest-cert-dir", "", "use certificates at `DIR` (*.crt, *.cert, *.key) to connect to the destination registries")
	f.IntVar(&r.retryTimes, "retry-times", retryTimes, "retries of each failed registry operation (of the whole copy, when not pushing a nix: image to a registry)")
	f.DurationVar(&r.retryDelay, "retry-delay", registry.DefaultRetryDelay, "first retry delay; it doubles on each retry (up to 30s), with jitter (0: the default)")
	f.DurationVar(&r.timeout, "timeout", registry.DefaultTimeout, "retry a registry operation that makes no progress for this long (0: wait forever)")
	f.IntVar(&r.parallel, "parallel", registry.DefaultParallel, "registry operations at once (blob checks, uploads, mounts, manifests)")
	f.BoolVarP(&r.quiet, "quiet", "q", false, "print no progress and no summary")
	f.BoolVar(&r.noSBOM, "no-sbom", false, "do not attach the image's SBOM to its manifest as an OCI referrer (it is attached only when a nix: image goes to a registry)")
}

// authFilePath is an --authfile flag's value, else $REGISTRY_AUTH_FILE
// (containers/image does not read that variable itself).
func authFilePath(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("REGISTRY_AUTH_FILE")
}

// userAgent is the User-Agent nixpush sends registries.
func userAgent() string { return "nixpush/" + userAgentVersion() }

// accessOptions are the registry options of how a registry is reached:
// the auth file (--authfile, else $REGISTRY_AUTH_FILE), certificates,
// hosts credentials may go to without TLS, and the User-Agent.
func accessOptions(authFile, certDir string, insecureHosts []string) []registry.Option {
	return []registry.Option{
		registry.WithAuthFile(authFilePath(authFile)),
		registry.WithCertDir(certDir),
		registry.WithInsecureCredentialsHosts(insecureHosts...),
		registry.WithUserAgent(userAgent()),
	}
}

// sourceOptions returns the options for a copy's source registry: the
// shared auth file and insecure hosts, the source's certificates.
func (r *registryFlags) sourceOptions(certDir string) []registry.Option {
	return accessOptions(r.authFile, certDir, r.insecureHosts)
}

// options returns the registry options the flags give, with the
// User-Agent and, unless quiet, progress on stderr every interval (0: the
// default) when it is not a terminal.
func (r *registryFlags) options(cmd *cobra.Command, interval time.Duration) []registry.Option {
	opts := append(accessOptions(r.authFile, r.certDir, r.insecureHosts),
		registry.WithRetry(r.retryTimes, r.retryDelay),
		registry.WithTimeout(r.timeout),
		registry.WithParallel(r.parallel),
		registry.WithReferrers(!r.noSBOM),
	)
	if cmd.Flags().Changed("dest-tls-verify") {
		opts = append(opts, registry.WithTLSVerify(r.tlsVerify))
	}
	if !r.quiet {
		tty := cmd.ErrOrStderr() == os.Stderr && term.IsTerminal(int(os.Stderr.Fd()))
		opts = append(opts, registry.WithProgress(redact.Writer(cmd.ErrOrStderr()), tty, interval))
	}
	return opts
}
