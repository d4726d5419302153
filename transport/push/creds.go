package push

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// ErrSharedCredentials says credentials given for "the" destination
// registry (WithDestinationCredentials, --dest-creds) would reach
// destinations on several registries.
var ErrSharedCredentials = errors.New("credentials given for any destination registry (--dest-creds), but the destinations are on several registries: " +
	"name the registry they are for (--creds-for HOST=USER), or use an auth file (--authfile)")

// ErrInsecureCredentials says credentials would go to a registry that is
// reached without TLS verification (--dest-tls-verify=false or an
// "insecure" registry in registries.conf), where containers/image falls
// back to plain HTTP, and that is neither a loopback address nor named by
// WithInsecureCredentialsHosts.
var ErrInsecureCredentials = errors.New("credentials would be sent without TLS verification, possibly over plain HTTP")

// ErrUnusedCredentials says WithDestinationCredentialsFor names a registry
// that no destination is on.
var ErrUnusedCredentials = errors.New("no destination is on this registry")

// DestinationSystemContexts returns the containers/image settings of each
// destination registry of refs, by host (reference.Domain), for code that
// talks to registries through containers/image without copy.Image, such as
// transport/release. It refuses, before any request is made:
//   - WithDestinationCredentials when refs are on more than one registry
//     (ErrSharedCredentials);
//   - WithDestinationCredentialsFor a host no ref is on
//     (ErrUnusedCredentials);
//   - any credentials (given, or found in the auth files, docker
//     config.json or credential helpers) for a registry reached without TLS
//     verification, unless it is a loopback address or named by
//     WithInsecureCredentialsHosts (ErrInsecureCredentials).
func DestinationSystemContexts(refs []reference.Named, opts ...Option) (map[string]*types.SystemContext, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	out := map[string]*types.SystemContext{}
	for _, named := range refs {
		host := reference.Domain(named)
		if out[host] == nil {
			out[host] = o.destinationContext(host)
		}
	}
	if o.dest.creds != nil && len(out) > 1 {
		return nil, ErrSharedCredentials
	}
	if err := o.checkCredsFor(out); err != nil {
		return nil, err
	}
	for _, named := range refs {
		if err := o.checkTransport(out[reference.Domain(named)], named); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// destinationContext returns the settings for the destination registry
// host: its own credentials if WithDestinationCredentialsFor gave some.
func (o *options) destinationContext(host string) *types.SystemContext {
	sys := o.systemContext(o.dest)
	if c := o.credsFor[host]; c != nil {
		sys.DockerAuthConfig = c
	}
	return sys
}

// checkCredsFor refuses credentials for a registry that is not among hosts:
// a misspelt host would otherwise quietly send none.
func (o *options) checkCredsFor(hosts map[string]*types.SystemContext) error {
	for h := range o.credsFor {
		if hosts[h] == nil {
			return fmt.Errorf("credentials for %s: %w", h, ErrUnusedCredentials)
		}
	}
	return nil
}

// copyContexts returns the settings of both ends of a copy, refusing what
// DestinationSystemContexts refuses.
func (o *options) copyContexts(src, dest types.ImageReference) (srcSys, destSys *types.SystemContext, err error) {
	srcSys, destSys = o.systemContext(o.src), o.systemContext(o.dest)
	hosts := map[string]*types.SystemContext{}
	if named := registryRef(dest); named != nil {
		destSys = o.destinationContext(reference.Domain(named))
		hosts[reference.Domain(named)] = destSys
	}
	if err := o.checkCredsFor(hosts); err != nil {
		return nil, nil, err
	}
	for _, end := range []struct {
		ref types.ImageReference
		sys *types.SystemContext
	}{{src, srcSys}, {dest, destSys}} {
		if named := registryRef(end.ref); named != nil {
			if err := o.checkTransport(end.sys, named); err != nil {
				return nil, nil, err
			}
		}
	}
	return srcSys, destSys, nil
}

// registryRef returns the registry reference of a docker:// reference,
// nil for other transports.
func registryRef(ref types.ImageReference) reference.Named {
	if ref.Transport().Name() != docker.Transport.Name() {
		return nil
	}
	return ref.DockerReference()
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
	if o.insecureCredsHosts[host] || isLoopback(host) {
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

// isLoopback says whether a registry host ("HOST[:PORT]") is this
// machine: localhost, 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
