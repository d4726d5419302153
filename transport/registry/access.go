package registry

import (
	"errors"
	"fmt"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/internal/loopback"
)

// ErrSharedCredentials says credentials given for "the" registry
// (WithCredentials, --dest-creds) would reach registries of several hosts.
var ErrSharedCredentials = errors.New("credentials given for any destination registry (--dest-creds), but the destinations are on several registries: " +
	"name the registry they are for (--creds-for HOST=USER), or use an auth file (--authfile)")

// ErrInsecureCredentials says credentials would go to a registry that is
// reached without TLS verification (WithTLSVerify(false) or an "insecure"
// registry in registries.conf), where containers/image falls back to plain
// HTTP, and that is neither a loopback address nor named by
// WithInsecureCredentialsHosts.
var ErrInsecureCredentials = errors.New("credentials would be sent without TLS verification, possibly over plain HTTP")

// ErrUnusedCredentials says WithCredentialsFor names a registry that no
// destination is on.
var ErrUnusedCredentials = errors.New("no destination is on this registry")

// SystemContexts returns the containers/image settings of each registry of
// refs, by host (reference.Domain), each with only its own credentials. It
// refuses, before any request is made:
//   - WithCredentials when refs are on more than one registry
//     (ErrSharedCredentials);
//   - WithCredentialsFor a host no ref is on (ErrUnusedCredentials);
//   - any credentials (given, or found in the auth files, docker
//     config.json or credential helpers) for a registry reached without TLS
//     verification, unless it is a loopback address or named by
//     WithInsecureCredentialsHosts (ErrInsecureCredentials).
func SystemContexts(refs []reference.Named, opts ...Option) (map[string]*types.SystemContext, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return o.systemContexts(refs)
}

func (o *options) systemContexts(refs []reference.Named) (map[string]*types.SystemContext, error) {
	out := map[string]*types.SystemContext{}
	for _, named := range refs {
		host := reference.Domain(named)
		if out[host] == nil {
			out[host] = o.registryContext(host)
		}
	}
	if o.creds != nil && len(out) > 1 {
		return nil, ErrSharedCredentials
	}
	for h := range o.credsFor {
		if out[h] == nil {
			return nil, fmt.Errorf("credentials for %s: %w", h, ErrUnusedCredentials)
		}
	}
	for _, named := range refs {
		if err := o.checkTransport(out[reference.Domain(named)], named); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Config is a validated set of Options, for code that drives
// containers/image itself (transport/imagecopy): the same settings, rules,
// retry policy and progress view as Push.
type Config struct{ o *options }

// NewConfig applies opts.
func NewConfig(opts ...Option) (*Config, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Config{o: o}, nil
}

// SystemContext returns the containers/image settings for one end of a
// copy: for a registry (named is not nil), that registry's, refused as
// SystemContexts refuses them; otherwise the settings every transport
// shares (auth file, certificates, TLS verification, blob-info cache).
func (c *Config) SystemContext(named reference.Named) (*types.SystemContext, error) {
	if named == nil {
		if len(c.o.credsFor) > 0 {
			return nil, fmt.Errorf("credentials for %s: %w", firstKey(c.o.credsFor), ErrUnusedCredentials)
		}
		return c.o.registryContext(""), nil
	}
	sys, err := c.o.systemContexts([]reference.Named{named})
	if err != nil {
		return nil, err
	}
	return sys[reference.Domain(named)], nil
}

// Parallel is the number of operations at once (WithParallel).
func (c *Config) Parallel() int { return c.o.parallel }

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// registryContext returns the settings for registry host ("" for none):
// its own credentials if WithCredentialsFor gave some.
func (o *options) registryContext(host string) *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:            o.authFile,
		DockerAuthConfig:        o.creds,
		DockerCertPath:          o.certDir,
		BlobInfoCacheDir:        o.blobInfoCacheDir,
		DockerRegistryUserAgent: o.userAgentString(),
	}
	if c := o.credsFor[host]; c != nil {
		sys.DockerAuthConfig = c
	}
	if o.tlsVerify != nil {
		sys.DockerInsecureSkipTLSVerify = types.NewOptionalBool(!*o.tlsVerify)
	}
	if o.signer != nil {
		o.signer.forSigning(sys)
	}
	return sys
}

// userAgentString is the User-Agent of every request: WithUserAgent's
// product, then containers/image's own (what it sends by default).
func (o *options) userAgentString() string {
	if o.userAgent == "" {
		return defaultUserAgent
	}
	return o.userAgent + " " + defaultUserAgent
}

// checkTransport refuses to reach named without TLS verification with
// credentials for it, unless its registry is a loopback address or was
// named by WithInsecureCredentialsHosts.
//
// containers/image tries HTTPS first and, when TLS verification is off,
// falls back to plain HTTP, sending Basic credentials either way; which
// one it will use is known only once connected. So the rule is enforced
// here, before any connection: credentials go to a remote registry only
// over verified TLS.
func (o *options) checkTransport(sys *types.SystemContext, named reference.Named) error {
	host := reference.Domain(named)
	if o.insecureCredsHosts[host] || loopback.Host(host) {
		return nil
	}
	insecure, err := skipsTLSVerify(sys, named)
	if err != nil || !insecure {
		return err
	}
	creds, err := config.GetCredentialsForRef(sys, named)
	if err != nil {
		return fmt.Errorf("registry %s: looking up credentials: %w", host, err)
	}
	if creds == (types.DockerAuthConfig{}) {
		return nil
	}
	return fmt.Errorf("registry %s: %w; keep TLS verification on, or name the host with --insecure-creds-host %s", host, ErrInsecureCredentials, host)
}

// skipsTLSVerify says whether containers/image reaches named without
// verifying TLS, as docker_client.go decides: the explicit setting, else
// registries.conf's "insecure".
func skipsTLSVerify(sys *types.SystemContext, named reference.Named) (bool, error) {
	if sys.DockerInsecureSkipTLSVerify != types.OptionalBoolUndefined {
		return sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue, nil
	}
	reg, err := sysregistriesv2.FindRegistry(sys, named.Name())
	if err != nil {
		return false, fmt.Errorf("loading registries: %w", err)
	}
	return reg != nil && reg.Insecure, nil
}
