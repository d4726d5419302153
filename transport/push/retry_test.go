package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
)

func TestRetryable(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"network", context.Background(), fmt.Errorf("writing blob: %w", io.ErrUnexpectedEOF), true},
		{"server error", context.Background(), errors.New("received unexpected HTTP status: 502 Bad Gateway"), true},
		{"layer mismatch", context.Background(), fmt.Errorf("x: %w", &description.LayerError{Layer: &description.Layer{}, Err: &layers.MismatchError{}}), false},
		{"bad credentials", context.Background(), fmt.Errorf("x: %w", docker.ErrUnauthorizedForCredentials{Err: errors.New("401")}), false},
		{"401", context.Background(), fmt.Errorf("x: %w", errcode.ErrorCodeUnauthorized.WithMessage("authentication required")), false},
		{"read-only", context.Background(), fmt.Errorf("x: %w", transport.ErrReadOnly), false},
		{"unknown authority", context.Background(), fmt.Errorf("ping: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), false},
		{"wrong host name", context.Background(), fmt.Errorf("ping: %w", x509.HostnameError{Host: "x"}), false},
		{"expired certificate", context.Background(), fmt.Errorf("ping: %w", x509.CertificateInvalidError{Reason: x509.Expired}), false},
		{"canceled", canceled, context.Canceled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.ctx, tc.err); got != tc.want {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"negative retries", WithRetry(-1, 0)},
		{"zero parallel", WithParallel(0)},
		{"empty user", WithDestinationCredentials("", "x")},
		{"empty tag", WithAdditionalTags("")},
		{"empty mount", WithMountFrom("")},
		{"nil progress", WithProgress(nil, false, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := makeOptions([]Option{tc.opt}); err == nil {
				t.Errorf("accepted")
			}
		})
	}
	for _, s := range []string{"", ":pw"} {
		if _, _, err := ParseCredentials(s); err == nil {
			t.Errorf("ParseCredentials(%q) accepted", s)
		}
	}
	if u, p, err := ParseCredentials("user:pa:ss"); err != nil || u != "user" || p != "pa:ss" {
		t.Errorf("ParseCredentials(user:pa:ss) = %q, %q, %v", u, p, err)
	}
}
