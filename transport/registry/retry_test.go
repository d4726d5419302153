package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	v2 "github.com/docker/distribution/registry/api/v2"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
)

func TestPermanent(t *testing.T) {
	storedSize := &transport.SizeError{Index: 1}
	tests := []struct {
		name string
		err  error
		want error // nil: retried
	}{
		{"EOF", fmt.Errorf("patch: %w", io.EOF), nil},
		{"unexpected EOF", io.ErrUnexpectedEOF, nil},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), nil},
		{"503", docker.UnexpectedHTTPStatusError{StatusCode: 503}, nil},
		{"502", fmt.Errorf("x: %w", docker.UnexpectedHTTPStatusError{StatusCode: 502}), nil},
		{"429 code", errcode.Errors{errcode.ErrorCodeTooManyRequests.WithMessage("slow down")}, nil},
		{"429 sentinel", docker.ErrTooManyRequests, nil},
		{"408 without a registry body", fmt.Errorf("x: %w", &statusErr{408}), nil},
		{"unknown code", errcode.Errors{errcode.ErrorCodeUnknown.WithMessage("?")}, nil},
		{"upload session lost", errcode.Errors{v2.ErrorCodeBlobUploadUnknown.WithMessage("x")}, nil},
		{"bad credentials", docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}, ErrUnauthorized},
		{"401 code", errcode.Errors{errcode.ErrorCodeUnauthorized.WithMessage("authentication required")}, ErrUnauthorized},
		{"401 status", docker.UnexpectedHTTPStatusError{StatusCode: 401}, ErrUnauthorized},
		{"403 code", fmt.Errorf("x: %w", errcode.Errors{errcode.ErrorCodeDenied.WithMessage("denied")}), ErrDenied},
		{"403 without a registry body", fmt.Errorf("x: %w", &statusErr{403}), ErrDenied},
		{"404 without a registry body", errors.Join(io.EOF, &statusErr{404}), errors.New("HTTP 404")},
		{"missing repository", errcode.Errors{v2.ErrorCodeNameUnknown.WithMessage("repository name not known to registry")}, ErrRepositoryUnknown},
		{"digest invalid", errcode.Errors{v2.ErrorCodeDigestInvalid.WithMessage("digest did not match")}, ErrDigestMismatch},
		{"our digest check", fmt.Errorf("%w: stored as x", ErrDigestMismatch), ErrDigestMismatch},
		{"unknown authority", fmt.Errorf("ping: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ErrCertificate},
		{"wrong host name", fmt.Errorf("ping: %w", x509.HostnameError{Host: "x"}), ErrCertificate},
		{"expired certificate", fmt.Errorf("ping: %w", x509.CertificateInvalidError{Reason: x509.Expired}), ErrCertificate},
		{"stored size", storedSize, storedSize},
		{"read-only", fmt.Errorf("x: %w", transport.ErrReadOnly), transport.ErrReadOnly},
		{"signature policy", fmt.Errorf("x: %w", signature.PolicyRequirementError("rejected")), signature.PolicyRequirementError("rejected")},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Permanent(tc.err)
			if (got == nil) != (tc.want == nil) || (tc.want != nil && !errors.Is(got, tc.want) && got.Error() != tc.want.Error()) {
				t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	le := fmt.Errorf("x: %w", &description.LayerError{Layer: &description.Layer{}, Err: &layers.MismatchError{}})
	if Permanent(le) == nil {
		t.Errorf("a layer mismatch is retried")
	}
	if v2.ErrorCodeNameUnknown == errcode.ErrorCodeUnknown || v2.ErrorCodeDigestInvalid == errcode.ErrorCodeUnknown {
		t.Errorf("distribution's error codes are not registered")
	}
}

// statusErr has the shape of containers/image's unexported
// unexpectedHTTPResponseError.
type statusErr struct{ StatusCode int }

func (e *statusErr) Error() string {
	return fmt.Sprintf("error parsing HTTP %d response body", e.StatusCode)
}

func TestRetrierBacksOff(t *testing.T) {
	r := Retrier{times: 3, initial: 20 * time.Millisecond, maxDelay: time.Second}
	tries := 0
	start := time.Now()
	err := r.Do(context.Background(), "op", func(context.Context, func()) error { tries++; return io.EOF })
	if tries != 4 || err == nil || !errors.Is(err, io.EOF) {
		t.Errorf("tries %d, err %v; want 4 tries and EOF", tries, err)
	}
	// Waits of at least half of 20, 40 and 80 ms.
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Errorf("retried in %s: no backoff", el)
	}
	tries = 0
	err = r.Do(context.Background(), "op", func(context.Context, func()) error {
		tries++
		return docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}
	})
	if tries != 1 || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("refused credentials: tries %d, err %v", tries, err)
	}
}

// TestRetrierTimeout: a try that stops making progress is cancelled and
// retried; waiting before the first touch does not count.
func TestRetrierTimeout(t *testing.T) {
	r := Retrier{times: 2, initial: time.Millisecond, maxDelay: time.Millisecond, timeout: 50 * time.Millisecond}
	tries := 0
	err := r.Do(context.Background(), "op", func(ctx context.Context, touch func()) error {
		tries++
		time.Sleep(80 * time.Millisecond) // waiting for a pool slot
		touch()
		if tries == 1 {
			<-ctx.Done() // hangs until the stall timer fires
			return fmt.Errorf("patch: %w", ctx.Err())
		}
		for range 4 { // slow but moving
			time.Sleep(30 * time.Millisecond)
			touch()
		}
		return ctx.Err()
	})
	if err != nil || tries != 2 {
		t.Errorf("tries %d, err %v; want a retry after the stall, then success", tries, err)
	}
}
