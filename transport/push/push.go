package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
)

// Result describes a finished copy.
type Result struct {
	// Manifest is the manifest written to the destination.
	Manifest []byte
	// Digest is the manifest's digest: what the destination now serves for
	// its tag, and what to sign.
	Digest digest.Digest
}

// ParseReference parses a containers/image reference such as
// "nix:/nix/store/…-image.json", "docker://registry/repo:tag" or
// "oci:dir:tag".
func ParseReference(s string) (types.ImageReference, error) {
	ref, err := alltransports.ParseImageName(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}

// Copy copies the image src to dest; both are references as
// ParseReference reads them.
func Copy(ctx context.Context, src, dest string, opts ...Option) (*Result, error) {
	srcRef, err := ParseReference(src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	destRef, err := ParseReference(dest)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return CopyImage(ctx, srcRef, destRef, opts...)
}

// CopyImage copies the image src to dest.
//
// When src is a nix: image, its layers and manifest are kept exactly as
// described (containers/image's PreserveDigests), except for destinations
// that only take Docker manifests (docker-archive:, docker-daemon:), where
// the manifest is converted but layers still go unchanged.
func CopyImage(ctx context.Context, src, dest types.ImageReference, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	policy, err := policyContext(o.policyFile)
	if err != nil {
		return nil, err
	}
	defer policy.Destroy() //nolint:errcheck // only frees memory

	if err := checkAdditionalTags(dest, o.additionalTags); err != nil {
		return nil, err
	}
	srcSys, destSys, err := o.copyContexts(src, dest)
	if err != nil {
		return nil, err
	}
	for _, end := range []struct {
		ref types.ImageReference
		sys *types.SystemContext
	}{{src, srcSys}, {dest, destSys}} {
		if err := checkDaemonSocket(end.ref, end.sys); err != nil {
			return nil, err
		}
	}
	if err := addArchiveTags(destSys, dest, o.additionalTags); err != nil {
		return nil, err
	}
	if len(o.mountFrom) > 0 {
		if err := premount(ctx, src, dest, srcSys, destSys, o.mountFrom, o.parallel); err != nil {
			return nil, err
		}
	}
	res, err := o.copyWithRetry(ctx, policy, src, dest, srcSys, destSys)
	if err != nil {
		return nil, err
	}
	if err := o.tagMore(ctx, policy, src, dest, srcSys, destSys, res); err != nil {
		return res, err
	}
	return res, nil
}

// copyWithRetry runs one containers/image copy, retried as WithRetry says.
func (o *options) copyWithRetry(ctx context.Context, policy *signature.PolicyContext, src, dest types.ImageReference, srcSys, destSys *types.SystemContext) (*Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := o.copyOnce(ctx, policy, src, dest, srcSys, destSys)
		if err == nil || attempt >= o.retryTimes || !retryable(ctx, err) {
			return res, err
		}
		delay := o.retryDelay
		if delay == 0 {
			delay = time.Second << attempt // skopeo's default: exponential backoff
		}
		o.note("copy failed (%v); retrying in %s (%d/%d)", err, delay, attempt+1, o.retryTimes)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}

func (o *options) copyOnce(ctx context.Context, policy *signature.PolicyContext, src, dest types.ImageReference, srcSys, destSys *types.SystemContext) (*Result, error) {
	copts := &copy.Options{
		SourceCtx:            srcSys,
		DestinationCtx:       destSys,
		MaxParallelDownloads: o.parallel,
		PreserveDigests:      preserveDigests(src, dest),
	}
	checked, err := checkStored(src, dest)
	if err != nil {
		return nil, err
	}
	var rep *reporter
	if o.progress != nil {
		rep = newReporter(o.progress, o.progressTerminal, o.progressLineInterval, labeler(src))
		copts.Progress, copts.ProgressInterval = rep.events, rep.interval
	}
	man, err := copy.Image(ctx, policy, checked, src, copts)
	if rep != nil {
		rep.close()
		if err == nil {
			rep.summary()
		}
	}
	var le *description.LayerError
	var se *transport.SizeError
	switch {
	case errors.As(err, &le):
		// containers/image wraps it in the upload's URL and state; the
		// layer error says all there is to say.
		return nil, fmt.Errorf("copying %s to %s: no manifest written: %w", transports(src), transports(dest), le)
	case errors.As(err, &se):
		return nil, fmt.Errorf("copying %s to %s: no manifest written: %w", transports(src), transports(dest), se)
	}
	if err != nil {
		switch {
		case unauthorized(err):
			err = fmt.Errorf("%w (HTTP 401 Unauthorized): %w", ErrUnauthorized, err)
		case UntrustedCertificate(err):
			err = fmt.Errorf("%w: %w", ErrCertificate, err)
		}
		return nil, fmt.Errorf("copying %s to %s: %w", transports(src), transports(dest), err)
	}
	d, err := manifest.Digest(man)
	if err != nil {
		return nil, fmt.Errorf("digest of the manifest written to %s: %w", transports(dest), err)
	}
	return &Result{Manifest: man, Digest: d}, nil
}

// preserveDigests says whether to forbid containers/image from changing
// layers or the manifest. It is set for nix: sources, whose digests were
// computed at build time; destinations that only store Docker manifests
// need a manifest conversion, which changes no layer.
func preserveDigests(src, dest types.ImageReference) bool {
	if src.Transport().Name() != transport.Name {
		return false
	}
	switch dest.Transport().Name() {
	case "docker-archive", "docker-daemon":
		return false
	}
	return true
}

// ErrUnauthorized says a registry refused the credentials it was given,
// or wanted some and got none.
var ErrUnauthorized = errors.New("the registry refused the credentials; check --src-creds/--dest-creds, --authfile or the login")

// unauthorized says whether err is a registry's 401.
func unauthorized(err error) bool {
	var creds docker.ErrUnauthorizedForCredentials
	var ec errcode.Error
	var status docker.UnexpectedHTTPStatusError
	switch {
	case errors.As(err, &creds):
		return true
	case errors.As(err, &ec):
		return ec.Code == errcode.ErrorCodeUnauthorized
	case errors.As(err, &status):
		return status.StatusCode == http.StatusUnauthorized
	}
	return false
}

// retryable says whether err may go away on a second try.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var le *description.LayerError
	var se *transport.SizeError
	var unauth docker.ErrUnauthorizedForCredentials
	var rejected signature.PolicyRequirementError
	switch {
	case errors.As(err, &le), errors.As(err, &se), errors.As(err, &unauth), unauthorized(err), errors.As(err, &rejected), errors.Is(err, transport.ErrReadOnly),
		UntrustedCertificate(err):
		return false
	}
	return true
}

// ErrCertificate says a registry's TLS certificate failed verification.
var ErrCertificate = errors.New("the registry's TLS certificate could not be verified; give its CA with --dest-cert-dir (--src-cert-dir for a source), or add it to the system's trust store")

// UntrustedCertificate says whether err is the failure to verify a TLS
// certificate: signed by an unknown authority, for another host name,
// expired, or otherwise invalid. Another try meets the same certificate,
// so it is never retried.
func UntrustedCertificate(err error) bool {
	var verify *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// policyContext reads the signature policy, or accepts everything.
func policyContext(path string) (*signature.PolicyContext, error) {
	var policy *signature.Policy
	if path == "" {
		policy = &signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}}
	} else {
		p, err := signature.NewPolicyFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("signature policy %s: %w", path, err)
		}
		policy = p
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("signature policy: %w", err)
	}
	return pc, nil
}

func (o *options) note(format string, args ...any) {
	if o.progress != nil {
		fmt.Fprintf(o.progress, format+"\n", args...)
	}
}

// transports formats a reference the way users write it.
func transports(ref types.ImageReference) string {
	return ref.Transport().Name() + ":" + ref.StringWithinTransport()
}
