package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	// Its error codes (NAME_UNKNOWN, DIGEST_INVALID, …), registered when
	// imported, so that registries' errors decode to them instead of
	// UNKNOWN.
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"

	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
)

// ErrDigestMismatch says a registry stored a blob under another digest
// than the one it was sent as.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrRepositoryUnknown says the registry has no such repository and does
// not create it on push.
var ErrRepositoryUnknown = errors.New("the registry has no such repository")

// ErrDenied says the registry refused access to a repository (HTTP 403).
var ErrDenied = errors.New("the registry denied access (HTTP 403); check the account's permissions on the repository")

// ErrUnauthorized says a registry refused the credentials it was given,
// or wanted some and got none.
var ErrUnauthorized = errors.New("the registry refused the credentials (HTTP 401 Unauthorized); check --dest-creds (--src-creds, --creds-for), --authfile or the login")

// ErrCertificate says a registry's TLS certificate failed verification.
var ErrCertificate = errors.New("the registry's TLS certificate could not be verified; give its CA with --dest-cert-dir (--src-cert-dir for a source), or add it to the system's trust store")

// Permanent gives the fail-fast reason for err, or nil when err may go
// away on another try: dropped connections, EOF, timeouts, 408, 429, 5xx,
// and anything unrecognised. It is nixpush's one classification of
// errors, for every push and every copy:
//   - a layer that does not match its description
//     (*description.LayerError), a blob the registry holds with another
//     size (*transport.SizeError), a digest the registry refused
//     (ErrDigestMismatch), writing to nix: (transport.ErrReadOnly), an
//     image the signature policy rejects: the error itself;
//   - refused credentials (ErrUnauthorized), a denied repository
//     (ErrDenied), a repository the registry does not know
//     (ErrRepositoryUnknown), a TLS certificate that fails verification
//     (ErrCertificate; the next try meets the same certificate), other 4xx
//     answers;
//   - cancellation: the context's error.
func Permanent(err error) error {
	var le *description.LayerError
	var se *transport.SizeError
	var unauth docker.ErrUnauthorizedForCredentials
	var status docker.UnexpectedHTTPStatusError
	var rejected signature.PolicyRequirementError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTimeout):
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &le), errors.As(err, &se), errors.Is(err, ErrDigestMismatch), errors.Is(err, transport.ErrReadOnly), errors.As(err, &rejected):
		return err
	case errors.As(err, &unauth):
		return ErrUnauthorized
	case UntrustedCertificate(err):
		return ErrCertificate
	case errors.As(err, &status):
		// containers/image reports statuses outside 4xx this way.
		return statusReason(status.StatusCode)
	}
	for _, ec := range errorCodes(err) {
		switch ec {
		case errcode.ErrorCodeUnauthorized:
			return ErrUnauthorized
		case errcode.ErrorCodeDenied:
			return ErrDenied
		case v2.ErrorCodeNameUnknown:
			return ErrRepositoryUnknown
		case v2.ErrorCodeDigestInvalid, v2.ErrorCodeSizeInvalid:
			return ErrDigestMismatch
		case v2.ErrorCodeNameInvalid, v2.ErrorCodeManifestInvalid, v2.ErrorCodeManifestBlobUnknown, errcode.ErrorCodeUnsupported:
			return err
		}
	}
	// A 4xx answer whose body is not a registry error (a HEAD's has none).
	if code, ok := httpStatus(err); ok {
		return statusReason(code)
	}
	return nil
}

// UntrustedCertificate says whether err is the failure to verify a TLS
// certificate: signed by an unknown authority, for another host name,
// expired, or otherwise invalid.
func UntrustedCertificate(err error) bool {
	var verify *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// statusReason is the fail-fast reason for an HTTP status, or nil.
func statusReason(code int) error {
	switch {
	case code == http.StatusUnauthorized:
		return ErrUnauthorized
	case code == http.StatusForbidden:
		return ErrDenied
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return nil
	case code >= 400:
		return fmt.Errorf("HTTP %d", code)
	}
	return nil
}

// errorCodes lists the registry error codes in err.
func errorCodes(err error) []errcode.ErrorCode {
	var out []errcode.ErrorCode
	var errs errcode.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			if c, ok := e.(errcode.ErrorCoder); ok {
				out = append(out, c.ErrorCode())
			}
		}
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		out = append(out, ec.Code)
	}
	var code errcode.ErrorCode
	if errors.As(err, &code) {
		out = append(out, code)
	}
	return out
}

// Retrier returns the retry policy of c; note, if not nil, is told of
// each retry.
func (c *Config) Retrier(note func(format string, args ...any)) Retrier {
	return c.o.retrier(note)
}

func (o *options) retrier(note func(format string, args ...any)) Retrier {
	return Retrier{times: o.retryTimes, initial: o.retryDelay, maxDelay: max(maxRetryDelay, o.retryDelay), timeout: o.timeout, note: note}
}

// ErrTimeout says an operation made no progress for the run's timeout; it
// is retried.
var ErrTimeout = errors.New("no progress within the timeout")

// Retrier retries operations with exponential backoff and full jitter, as
// WithRetry and WithTimeout say: the one retry policy of every push and
// copy. Config.Retrier makes one.
type Retrier struct {
	times    int           // retries after the first try
	initial  time.Duration // first backoff
	maxDelay time.Duration
	// timeout ends a try that makes no progress for this long (0: never).
	timeout time.Duration
	note    func(format string, args ...any)
}

// Do runs op until it succeeds, fails permanently, runs out of tries or
// ctx ends. what names the operation in messages. op is called again from
// scratch on each try: a blob is re-streamed from the store.
//
// containers/image itself waits out a 429 on requests without a body (HEAD,
// POST, the final PUT), honouring Retry-After; a 429 or any other failure
// that reaches here is retried with this backoff.
//
// op gets a context for the try and touch, which it calls when it starts
// working (after waiting for a pool slot) and whenever it makes progress:
// a try that goes r.timeout without a touch is cancelled and retried.
func (r Retrier) Do(ctx context.Context, what string, op func(ctx context.Context, touch func()) error) error {
	delay := r.initial
	for attempt := 0; ; attempt++ {
		err := r.try(ctx, op)
		if err == nil {
			return nil
		}
		if reason := Permanent(err); reason != nil || ctx.Err() != nil {
			if reason != nil && reason != err && !errors.Is(err, reason) {
				return fmt.Errorf("%w: %w", reason, err)
			}
			return err
		}
		if attempt >= r.times {
			return fmt.Errorf("gave up after %d tries: %w", attempt+1, err)
		}
		// Full jitter: concurrent retries against a struggling registry
		// spread out instead of arriving together.
		wait := time.Duration(rand.Int64N(int64(delay) + 1))
		wait = max(wait, delay/2)
		if r.note != nil {
			r.note("%s: %v; retrying in %s (%d/%d)", what, err, wait.Round(time.Millisecond), attempt+1, r.times)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(delay*2, r.maxDelay)
	}
}

// try runs op once under the stall timer.
func (r Retrier) try(ctx context.Context, op func(ctx context.Context, touch func()) error) error {
	if r.timeout <= 0 {
		return op(ctx, func() {})
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var last atomic.Int64 // UnixNano of the last touch; 0: not started
	touch := func() { last.Store(time.Now().UnixNano()) }
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(max(r.timeout/4, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if l := last.Load(); l != 0 && time.Since(time.Unix(0, l)) > r.timeout {
					cancel(ErrTimeout)
					return
				}
			}
		}
	}()
	err := op(tctx, touch)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(tctx), ErrTimeout) {
		return fmt.Errorf("%w (%s): %w", ErrTimeout, r.timeout, err)
	}
	return err
}
