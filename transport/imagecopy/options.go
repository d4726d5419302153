package imagecopy

import (
	"errors"

	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport/registry"
)

// Option configures a copy.
type Option func(*options) error

type options struct {
	// registry are the destination registry's settings and the run's
	// (retries, parallel copies, progress); source the source registry's.
	registry, source []registry.Option
	srcDaemonHost    string
	destDaemonHost   string
	policyFile       string
	additionalTags   []string
	mountFrom        []string
	multiArch        string               // WithMultiArch; "" for the source's default
	platform         *types.SystemContext // WithPlatform's choice, or nil
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithRegistryOptions sets how the destination registry is reached
// (registry.WithAuthFile, WithCredentials, WithCredentialsFor,
// WithTLSVerify, WithCertDir, …) and how the copy goes: registry.WithRetry
// and WithParallel, WithProgress. A nix: image pushed to a registry gets
// all of them, as registry.Push does.
func WithRegistryOptions(opts ...registry.Option) Option {
	return func(o *options) error { o.registry = append(o.registry, opts...); return nil }
}

// WithSourceRegistryOptions sets how the source registry is reached:
// registry.WithAuthFile, WithCredentials, WithTLSVerify, WithCertDir,
// WithInsecureCredentialsHosts, WithBlobInfoCacheDir apply.
func WithSourceRegistryOptions(opts ...registry.Option) Option {
	return func(o *options) error { o.source = append(o.source, opts...); return nil }
}

// WithSourceDaemonHost talks to the Docker daemon at host (unix:///…,
// tcp://…) for a docker-daemon: source.
func WithSourceDaemonHost(host string) Option {
	return func(o *options) error { o.srcDaemonHost = host; return nil }
}

// WithDestinationDaemonHost is WithSourceDaemonHost for the destination.
func WithDestinationDaemonHost(host string) Option {
	return func(o *options) error { o.destDaemonHost = host; return nil }
}

// WithPolicyFile checks signatures with the policy.json at path. Without
// it, every image is accepted: nix: images carry no signatures, and the
// copy is of the caller's own build.
func WithPolicyFile(path string) Option {
	return func(o *options) error { o.policyFile = path; return nil }
}

// WithAdditionalTags also tags the copied image with each tag. For a
// docker:// destination, a plain tag ("v1.2") names the destination
// repository and a full reference ("registry/other/repo:tag") another
// repository of the destination's registry, whose blobs are mounted from
// the first destination; for a nix: image these are destinations of the
// one push. For docker-archive: destinations, tags are added to the
// archive.
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
