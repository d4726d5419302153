package push

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.podman.io/image/v5/types"
)

// DefaultParallel is how many blobs are copied at once unless WithParallel
// says otherwise. containers/image's default of 6 makes a warm re-push of a
// 100-layer image spend most of its time on sequential existence checks
// (see bench/push.sh); 16 keeps a local or remote registry busy without
// opening more connections than registries commonly allow per client.
const DefaultParallel = 16

// Option configures a copy.
type Option func(*options) error

type options struct {
	authFile             string
	src, dest            side
	retryTimes           int
	retryDelay           time.Duration
	policyFile           string
	additionalTags       []string
	parallel             uint
	blobInfoCacheDir     string
	mountFrom            []string
	progress             io.Writer
	progressTerminal     bool
	progressLineInterval time.Duration
	// credsFor holds credentials for one destination registry each, by
	// host (reference.Domain).
	credsFor map[string]*types.DockerAuthConfig
	// insecureCredsHosts may get credentials without TLS verification.
	insecureCredsHosts map[string]bool
}

// side holds the settings of one end of a copy.
type side struct {
	creds      *types.DockerAuthConfig
	tlsVerify  *bool
	certDir    string
	daemonHost string
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		parallel:             DefaultParallel,
		progressLineInterval: 5 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithAuthFile reads registry credentials from path (a containers auth.json
// or a docker config.json) for both source and destination, instead of the
// default locations.
func WithAuthFile(path string) Option {
	return func(o *options) error { o.authFile = path; return nil }
}

// WithSourceCredentials logs in to the source registry as user. The
// password must not be empty.
func WithSourceCredentials(user, password string) Option {
	return func(o *options) error { return setCreds(&o.src, "source", user, password) }
}

// WithDestinationCredentials logs in to the destination registry as user.
// The password must not be empty. They are for a single registry:
// DestinationSystemContexts refuses them for destinations on several (see
// WithDestinationCredentialsFor).
func WithDestinationCredentials(user, password string) Option {
	return func(o *options) error { return setCreds(&o.dest, "destination", user, password) }
}

func setCreds(s *side, which, user, password string) error {
	c, err := newCreds(which, user, password)
	s.creds = c
	return err
}

func newCreds(which, user, password string) (*types.DockerAuthConfig, error) {
	if user == "" {
		return nil, fmt.Errorf("%s credentials: empty user name", which)
	}
	if password == "" {
		return nil, fmt.Errorf("%s credentials for %s: empty password", which, user)
	}
	return &types.DockerAuthConfig{Username: user, Password: password}, nil
}

// WithDestinationCredentialsFor logs in as user to the destination
// registry host only ("registry.example.com", "127.0.0.1:5000",
// "docker.io": the registry of a reference as written, port included).
// Other registries get the credentials of the auth files and credential
// helpers, as without it. Repeatable, once per host.
func WithDestinationCredentialsFor(host, user, password string) Option {
	return func(o *options) error {
		if host == "" || strings.ContainsAny(host, "/@") {
			return fmt.Errorf("credentials for %q: want a registry host such as registry.example.com or 127.0.0.1:5000", host)
		}
		if o.credsFor[host] != nil {
			return fmt.Errorf("credentials for %s: given twice", host)
		}
		c, err := newCreds("destination", user, password)
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
// WithDestinationCredentialsFor names them) even when TLS is not verified
// for it, which may mean plain HTTP. Without it, such a run is refused
// before its first request unless the host is a loopback address: see
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
// empty when s has none; callers get it from elsewhere (the CLI reads stdin,
// the environment or a terminal), since WithDestinationCredentials refuses
// an empty one.
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

// WithSourceTLSVerify sets whether the source registry's TLS certificate is
// verified (and whether HTTPS is required).
func WithSourceTLSVerify(verify bool) Option {
	return func(o *options) error { o.src.tlsVerify = &verify; return nil }
}

// WithDestinationTLSVerify is WithSourceTLSVerify for the destination.
func WithDestinationTLSVerify(verify bool) Option {
	return func(o *options) error { o.dest.tlsVerify = &verify; return nil }
}

// WithSourceCertDir uses the certificates in dir (*.crt, *.cert, *.key) to
// reach the source registry.
func WithSourceCertDir(dir string) Option {
	return func(o *options) error { o.src.certDir = dir; return nil }
}

// WithDestinationCertDir is WithSourceCertDir for the destination.
func WithDestinationCertDir(dir string) Option {
	return func(o *options) error { o.dest.certDir = dir; return nil }
}

// WithSourceDaemonHost talks to the Docker daemon at host (unix:///…,
// tcp://…) for a docker-daemon: source.
func WithSourceDaemonHost(host string) Option {
	return func(o *options) error { o.src.daemonHost = host; return nil }
}

// WithDestinationDaemonHost is WithSourceDaemonHost for the destination.
func WithDestinationDaemonHost(host string) Option {
	return func(o *options) error { o.dest.daemonHost = host; return nil }
}

// WithRetry retries a failed copy times more, waiting delay between tries
// (0: exponential backoff from one second, as skopeo does). Layer
// mismatches, refused credentials and cancellation are never retried.
func WithRetry(times int, delay time.Duration) Option {
	return func(o *options) error {
		if times < 0 {
			return fmt.Errorf("retry times %d: must not be negative", times)
		}
		if delay < 0 {
			return fmt.Errorf("retry delay %s: must not be negative", delay)
		}
		o.retryTimes, o.retryDelay = times, delay
		return nil
	}
}

// WithPolicyFile checks signatures with the policy.json at path. Without
// it, every image is accepted: nix: images carry no signatures, and the
// copy is of the caller's own build.
func WithPolicyFile(path string) Option {
	return func(o *options) error { o.policyFile = path; return nil }
}

// WithAdditionalTags also tags the copied image with each tag. A plain tag
// ("v1.2") names the destination repository; a full reference
// ("registry/other/repo:tag") copies there too, mounting blobs from the
// first destination. For docker-archive: destinations, tags are added to
// the archive.
func WithAdditionalTags(tags ...string) Option {
	return func(o *options) error {
		for _, t := range tags {
			if t == "" {
				return errors.New("additional tag: empty")
			}
		}
		o.additionalTags = append(o.additionalTags, tags...)
		return nil
	}
}

// WithParallel copies at most n blobs at once (default DefaultParallel).
func WithParallel(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("parallel copies %d: must be at least 1", n)
		}
		o.parallel = uint(n)
		return nil
	}
}

// WithBlobInfoCacheDir keeps containers/image's blob-info cache in dir
// instead of the user's default location.
func WithBlobInfoCacheDir(dir string) Option {
	return func(o *options) error { o.blobInfoCacheDir = dir; return nil }
}

// WithMountFrom names repositories of the destination registry
// ("registry/repo", or "repo" for the destination's registry) that may
// already hold the image's blobs: a blob missing from the destination but
// present there is mounted, not uploaded. containers/image only mounts from
// locations its blob-info cache remembers, which a fresh CI runner has none
// of; this gives it those locations without any local state.
func WithMountFrom(repos ...string) Option {
	return func(o *options) error {
		for _, r := range repos {
			if r == "" {
				return errors.New("mount-from: empty repository name")
			}
		}
		o.mountFrom = append(o.mountFrom, repos...)
		return nil
	}
}

// WithProgress reports progress to w: live per-blob bars and a total when
// terminal is true, otherwise plain lines (blob, bytes, rate) every
// interval (0: five seconds), fit for CI logs.
func WithProgress(w io.Writer, terminal bool, interval time.Duration) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("progress: nil writer")
		}
		o.progress, o.progressTerminal = w, terminal
		if interval > 0 {
			o.progressLineInterval = interval
		}
		return nil
	}
}

// systemContext returns the containers/image settings for one side.
func (o *options) systemContext(s side) *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:     o.authFile,
		DockerAuthConfig: s.creds,
		DockerCertPath:   s.certDir,
		OCICertPath:      s.certDir,
		BlobInfoCacheDir: o.blobInfoCacheDir,

		DockerDaemonHost:     s.daemonHost,
		DockerDaemonCertPath: s.certDir,
	}
	if s.tlsVerify != nil {
		sys.DockerInsecureSkipTLSVerify = types.NewOptionalBool(!*s.tlsVerify)
		sys.OCIInsecureSkipTLSVerify = !*s.tlsVerify
		sys.DockerDaemonInsecureSkipTLSVerify = !*s.tlsVerify
	}
	return sys
}
