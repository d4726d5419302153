package release

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport/push"
)

// Defaults of a run.
const (
	DefaultRetryTimes = 5
	DefaultRetryDelay = time.Second
	DefaultTimeout    = 2 * time.Minute
	maxRetryDelay     = 30 * time.Second
)

// Option configures Push.
type Option func(*options) error

type options struct {
	registry             []push.Option
	parallel             int
	retryTimes           int
	retryDelay           time.Duration
	timeout              time.Duration
	keepGoing            bool
	progress             io.Writer
	progressTerminal     bool
	progressLineInterval time.Duration
	layerOpts            []layers.Option
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		parallel:             push.DefaultParallel,
		retryTimes:           DefaultRetryTimes,
		retryDelay:           DefaultRetryDelay,
		timeout:              DefaultTimeout,
		progressLineInterval: 5 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithRegistryOptions sets how registries are reached: transport/push's
// WithAuthFile, WithDestinationCredentials (refused when the destinations
// are on several registries), WithDestinationCredentialsFor,
// WithInsecureCredentialsHosts, WithDestinationTLSVerify,
// WithDestinationCertDir and WithBlobInfoCacheDir apply; others are
// ignored. push.DestinationSystemContexts says what is refused.
func WithRegistryOptions(opts ...push.Option) Option {
	return func(o *options) error { o.registry = append(o.registry, opts...); return nil }
}

// WithParallel bounds the registry operations of the whole run (blob
// checks, uploads, mounts, manifests) to n at once (default
// push.DefaultParallel).
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
// backing off exponentially from initial with jitter (defaults
// DefaultRetryTimes and DefaultRetryDelay).
func WithRetry(times int, initial time.Duration) Option {
	return func(o *options) error {
		if times < 0 {
			return fmt.Errorf("retry times %d: must not be negative", times)
		}
		if initial <= 0 {
			return fmt.Errorf("retry delay %s: must be positive", initial)
		}
		o.retryTimes, o.retryDelay = times, initial
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
// true, otherwise a plain line every interval (0: five seconds) and one
// per finished image.
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

// WithLayerOptions passes opts to layers.Open when a layer is streamed
// (tests use layers.WithRoot).
func WithLayerOptions(opts ...layers.Option) Option {
	return func(o *options) error { o.layerOpts = append(o.layerOpts, opts...); return nil }
}
