package registry

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
)

// Defaults of a run.
const (
	// DefaultParallel is how many registry operations run at once unless
	// WithParallel says otherwise. containers/image's default of 6 makes
	// a 100-layer push spend most of its time on sequential round trips
	// (see bench/push.sh); 16 keeps a local or remote registry busy
	// without opening more connections than registries commonly allow
	// per client.
	DefaultParallel   = 16
	DefaultRetryTimes = 5
	DefaultRetryDelay = time.Second
	DefaultTimeout    = 2 * time.Minute
	// DefaultProgressInterval is how often a plain progress line is
	// printed.
	DefaultProgressInterval = 5 * time.Second
	maxRetryDelay           = 30 * time.Second
)

// Option configures Push, SystemContexts and NewConfig: how registries are
// reached (credentials, TLS, certificates) and how a run goes (parallel
// operations, retries, progress). Each is validated when it is applied.
type Option func(*options) error

type options struct {
	// How registries are reached.
	authFile string
	// creds are for "the" registry: refused when a run reaches several.
	creds *types.DockerAuthConfig
	// credsFor holds credentials for one registry each, by host
	// (reference.Domain).
	credsFor map[string]*types.DockerAuthConfig
	// insecureCredsHosts may get credentials without TLS verification.
	insecureCredsHosts map[string]bool
	tlsVerify          *bool
	certDir            string
	blobInfoCacheDir   string
	userAgent          string
	signer             *Signer

	// How a run goes.
	parallel             int
	retryTimes           int
	retryDelay           time.Duration
	timeout              time.Duration
	keepGoing            bool
	progress             io.Writer
	progressTerminal     bool
	progressLineInterval time.Duration
	layerOpts            []layers.Option
	noReferrers          bool // WithReferrers(false): no SBOM
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		parallel:             DefaultParallel,
		retryTimes:           DefaultRetryTimes,
		retryDelay:           DefaultRetryDelay,
		timeout:              DefaultTimeout,
		progressLineInterval: DefaultProgressInterval,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithAuthFile reads registry credentials from path (a containers
// auth.json or a docker config.json), each entry for its registry, instead
// of the default locations.
func WithAuthFile(path string) Option {
	return func(o *options) error { o.authFile = path; return nil }
}

// WithCredentials logs in as user to "the" registry. The password must
// not be empty. They are for a single registry: a run whose destinations
// are on several is refused (ErrSharedCredentials; see
// WithCredentialsFor).
func WithCredentials(user, password string) Option {
	return func(o *options) error {
		c, err := newCreds(user, password)
		o.creds = c
		return err
	}
}

func newCreds(user, password string) (*types.DockerAuthConfig, error) {
	if user == "" {
		return nil, errors.New("credentials: empty user name")
	}
	if password == "" {
		return nil, fmt.Errorf("credentials for %s: empty password", user)
	}
	return &types.DockerAuthConfig{Username: user, Password: password}, nil
}

// WithCredentialsFor logs in as user to the registry host only
// ("registry.example.com", "127.0.0.1:5000", "docker.io": the registry of a
// reference as written, port included). Other registries get the
// credentials of the auth files and credential helpers, as without it.
// Repeatable, once per host.
func WithCredentialsFor(host, user, password string) Option {
	return func(o *options) error {
		if host == "" || strings.ContainsAny(host, "/@") {
			return fmt.Errorf("credentials for %q: want a registry host such as registry.example.com or 127.0.0.1:5000", host)
		}
		if o.credsFor[host] != nil {
			return fmt.Errorf("credentials for %s: given twice", host)
		}
		c, err := newCreds(user, password)
		if err != nil {
			return fmt.Errorf("registry %s: %w", host, err)
		}
		if o.credsFor == nil {
			o.credsFor = map[string]*types.DockerAuthConfig{}
		}
		o.credsFor[host] = c
		return nil
	}
}

// WithInsecureCredentialsHosts lets credentials go to each of hosts (as
// WithCredentialsFor names them) even when TLS is not verified for it,
// which may mean plain HTTP. Without it, such a run is refused before its
// first request unless the host is a loopback address: see
// ErrInsecureCredentials.
func WithInsecureCredentialsHosts(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "/@") {
				return fmt.Errorf("insecure credentials host %q: want a registry host such as registry.example.com or 127.0.0.1:5000", h)
			}
			if o.insecureCredsHosts == nil {
				o.insecureCredsHosts = map[string]bool{}
			}
			o.insecureCredsHosts[h] = true
		}
		return nil
	}
}

// ParseCredentials splits skopeo's USER[:PASSWORD] form. The password is
// empty when s has none; callers get it from elsewhere (the CLI reads
// stdin, the environment or a terminal), since WithCredentials refuses an
// empty one.
func ParseCredentials(s string) (user, password string, err error) {
	if s == "" {
		return "", "", errors.New("credentials: empty; want USER[:PASSWORD]")
	}
	user, password, _ = strings.Cut(s, ":")
	if user == "" {
		return "", "", errors.New("credentials: empty user name; want USER[:PASSWORD]")
	}
	return user, password, nil
}

// WithTLSVerify sets whether registries' TLS certificates are verified
// (and whether HTTPS is required). Unset, containers/image verifies them
// unless registries.conf marks a registry insecure.
func WithTLSVerify(verify bool) Option {
	return func(o *options) error { o.tlsVerify = &verify; return nil }
}

// WithCertDir uses the certificates in dir (*.crt CAs, *.cert/*.key client
// pairs) to reach registries.
func WithCertDir(dir string) Option {
	return func(o *options) error { o.certDir = dir; return nil }
}

// WithBlobInfoCacheDir keeps containers/image's blob-info cache in dir
// instead of the user's default location.
func WithBlobInfoCacheDir(dir string) Option {
	return func(o *options) error { o.blobInfoCacheDir = dir; return nil }
}

// WithUserAgent sends product ("nixpush/v1.2.3") first in the User-Agent
// of every registry request, before containers/image's own part.
func WithUserAgent(product string) Option {
	return func(o *options) error {
		if product == "" || strings.ContainsAny(product, " \t\r\n") {
			return fmt.Errorf("user agent %q: want one product token such as nixpush/v1.2.3", product)
		}
		o.userAgent = product
		return nil
	}
}

// WithParallel bounds the registry operations of the whole run (blob
// checks, uploads, mounts, manifests) to n at once (default
// DefaultParallel).
func WithParallel(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("parallel operations %d: must be at least 1", n)
		}
		o.parallel = n
		return nil
	}
}

// WithRetry retries each failed registry operation up to times more,
// backing off exponentially from delay (doubling up to 30s) with full
// jitter. A delay of 0 means DefaultRetryDelay. Defaults: DefaultRetryTimes
// and DefaultRetryDelay. What is never retried: see Permanent.
func WithRetry(times int, delay time.Duration) Option {
	return func(o *options) error {
		if times < 0 {
			return fmt.Errorf("retry times %d: must not be negative", times)
		}
		if delay < 0 {
			return fmt.Errorf("retry delay %s: must not be negative", delay)
		}
		if delay == 0 {
			delay = DefaultRetryDelay
		}
		o.retryTimes, o.retryDelay = times, delay
		return nil
	}
}

// WithTimeout ends a try of a registry operation that makes no progress
// for d (an upload that sends no bytes, a check that gets no answer) and
// retries it (default DefaultTimeout; 0: never).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("timeout %s: must not be negative", d)
		}
		o.timeout = d
		return nil
	}
}

// WithKeepGoing lets the other images finish when one fails. Without it,
// the first failure stops the run.
func WithKeepGoing(keep bool) Option {
	return func(o *options) error { o.keepGoing = keep; return nil }
}

// WithProgress reports the run's progress to w: live bars when terminal is
// true, otherwise a plain line every interval (0: DefaultProgressInterval).
func WithProgress(w io.Writer, terminal bool, interval time.Duration) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("progress: nil writer")
		}
		if interval < 0 {
			return fmt.Errorf("progress interval %s: must not be negative", interval)
		}
		o.progress, o.progressTerminal = w, terminal
		if interval > 0 {
			o.progressLineInterval = interval
		}
		return nil
	}
}

// WithLayerOptions passes opts to layers.Open when a layer is streamed
// from an image the run reads itself (Image.Source without Image.Built;
// tests use layers.WithRoot).
func WithLayerOptions(opts ...layers.Option) Option {
	return func(o *options) error { o.layerOpts = append(o.layerOpts, opts...); return nil }
}
