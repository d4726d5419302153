package registry

// Reading an image's referrers list. containers/image writes manifests and
// blobs for nixpush, but has no call for the OCI 1.1 referrers API, so the
// one request it lacks (GET /v2/NAME/referrers/DIGEST), and the fallback
// tag read beside it, go through go-containerregistry's authenticating
// transport, given the same credentials (containers/image's own lookup),
// TLS settings and certificates as containers/image's client.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrtransport "github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/configfile"
	"go.podman.io/storage/pkg/unshare"
)

// maxReferrersList is the largest referrers list (or fallback index) read.
const maxReferrersList = 4 << 20

// referrersList is what a repository lists as referrers of a manifest.
type referrersList struct {
	// api says the registry has the referrers API: it keeps the list
	// itself. Without it, the list is the index under the fallback tag,
	// which the client keeps.
	api   bool
	index ocispec.Index
}

// has says whether the list holds the manifest d.
func (l referrersList) has(d digest.Digest) bool {
	for _, m := range l.index.Manifests {
		if m.Digest == d {
			return true
		}
	}
	return false
}

// statusError is an unexpected HTTP answer; its StatusCode is what
// httpStatus (cimage.go), and so the retry policy, reads.
type statusError struct {
	URL        string
	StatusCode int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: unexpected HTTP status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// errNotIndex is wrapped by the error for a referrers list, or a fallback
// tag, that is not an image index: nixpush does not overwrite such a tag.
var errNotIndex = errors.New("not an image index")

// referrersReader reads the referrers lists of one repository. Its
// requests go out without credentials first; the first 401 sets up
// go-containerregistry's authenticating transport (a ping of /v2/, then
// the challenge's token or basic auth), used from then on. A registry that
// serves reads anonymously costs no extra request.
type referrersReader struct {
	plain *http.Client
	auth  func(ctx context.Context) (http.RoundTripper, error)
	base  string // SCHEME://HOST/v2/PATH

	mu     sync.Mutex
	authed *http.Client
}

// newReferrersReader makes the reader of rp's referrers, with the
// credentials, TLS settings and certificates containers/image uses for
// rp's registry.
func (r *run) newReferrersReader(ctx context.Context, rp *repo) (*referrersReader, error) {
	sys := r.sysFor(rp.named)
	host := reference.Domain(rp.named)
	creds, err := config.GetCredentialsForRef(sys, rp.named)
	if err != nil {
		return nil, fmt.Errorf("registry %s: looking up credentials: %w", host, err)
	}
	auth := authn.Anonymous
	if creds != (types.DockerAuthConfig{}) {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Password, IdentityToken: creds.IdentityToken})
	}
	insecure, err := skipsTLSVerify(sys, rp.named)
	if err != nil {
		return nil, err
	}
	tlsc, err := tlsConfig(sys, host, insecure)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsc
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	scope := reg.Repo(reference.Path(rp.named)).Scope(ggcrtransport.PullScope)
	var rt http.RoundTripper = base
	if !insecure {
		// ggcr tries plain HTTP too for private-network and localhost
		// addresses, and would go on with it if HTTPS failed to answer:
		// with TLS verification on, nothing leaves without TLS.
		rt = httpsOnly{base}
	}
	ua := ggcrtransport.NewUserAgent(rt, r.o.userAgentString())
	newAuth := func(ctx context.Context) (http.RoundTripper, error) {
		rt, err := ggcrtransport.NewWithContext(ctx, reg, auth, ua, []string{scope})
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", host, err)
		}
		return rt, nil
	}
	// As containers/image: HTTPS, and plain HTTP only when TLS
	// verification is off and HTTPS does not answer (checkTransport has
	// made sure no credentials go to a remote host that way).
	scheme := "https"
	if insecure {
		probe := &http.Client{Transport: base}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
		if err != nil {
			return nil, err
		}
		if res, err := probe.Do(req); err != nil {
			scheme = "http"
		} else {
			res.Body.Close()
		}
	}
	return &referrersReader{
		plain: &http.Client{Transport: ua},
		auth:  newAuth,
		base:  scheme + "://" + reg.RegistryStr() + "/v2/" + reference.Path(rp.named),
	}, nil
}

// httpsOnly refuses every request that is not HTTPS.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return nil, fmt.Errorf("%s %s://%s: %w", req.Method, req.URL.Scheme, req.URL.Host, errPlainHTTP)
	}
	return h.next.RoundTrip(req)
}

// errPlainHTTP says a request was not sent because it would have gone
// without TLS to a registry whose TLS is verified.
var errPlainHTTP = errors.New("not sent: plain HTTP to a registry whose TLS is verified")

// tlsConfig is containers/image's TLS configuration for host: the
// certificates of --cert-dir, or of host's directory in the per-host
// certificate directories containers/image searches (certDir).
func tlsConfig(sys *types.SystemContext, host string, insecure bool) (*tls.Config, error) {
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // the user's --dest-tls-verify=false
	dir, err := certDir(sys, host)
	if err != nil {
		return nil, fmt.Errorf("registry %s: certificates: %w", host, err)
	}
	if dir != "" {
		if err := tlsclientconfig.SetupCertificates(dir, tlsc); err != nil {
			return nil, fmt.Errorf("registry %s: certificates in %s: %w", host, dir, err)
		}
	}
	return tlsc, nil
}

// certDir is the directory of host's certificates as containers/image's
// docker client finds it (dockerCertDir, which it does not export): the
// SystemContext's, else host's directory in its per-host directory, else
// the first of the drop-in certs.d directories (the user's
// ~/.config/containers/certs.d when rootless, /etc/containers/certs.d)
// and /etc/docker/certs.d that has one; "" for none.
func certDir(sys *types.SystemContext, host string) (string, error) {
	if sys.DockerCertPath != "" {
		return sys.DockerCertPath, nil
	}
	if sys.DockerPerHostCertDirPath != "" {
		return filepath.Join(sys.DockerPerHostCertDirPath, host), nil
	}
	paths, err := configfile.GetSearchPaths(&configfile.File{
		Name: "certs", Extension: "d", DoNotUseExtensionForConfigName: true,
		UserId: unshare.GetRootlessUID(), RootForImplicitAbsolutePaths: sys.RootForImplicitAbsolutePaths,
	})
	if err != nil {
		return "", err
	}
	for _, base := range append(paths.DropInDirectories, filepath.Join(sys.RootForImplicitAbsolutePaths, "/etc/docker/certs.d")) {
		d := filepath.Join(base, host)
		switch _, err := os.Stat(d); {
		case err == nil:
			return d, nil
		case !os.IsNotExist(err) && !os.IsPermission(err):
			return "", err
		}
	}
	return "", nil
}

// FallbackTag is the tag under which a registry without the referrers API
// lists the referrers of the manifest d (OCI distribution spec 1.1):
// "sha256-<hex>".
func FallbackTag(d digest.Digest) string {
	return string(d.Algorithm()) + "-" + d.Encoded()
}

// list returns the referrers of subject: from the referrers API where the
// registry has it, else from the fallback tag. A registry answering the
// referrers endpoint with 404, 400, 406 or something not an index has no
// referrers API.
func (rr *referrersReader) list(ctx context.Context, subject digest.Digest) (referrersList, error) {
	idx, found, err := rr.getIndex(ctx, rr.base+"/referrers/"+subject.String())
	var se *statusError
	switch {
	case errors.Is(err, errNotIndex), errors.As(err, &se) && (se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusNotAcceptable):
		// No referrers API: what else answers there (as ggcr's
		// remote.Referrers reads it).
	case err != nil:
		return referrersList{}, err
	case found:
		return referrersList{api: true, index: idx}, nil
	}
	idx, err = rr.fallback(ctx, subject)
	return referrersList{index: idx}, err
}

// fallback returns the index under subject's fallback tag; an empty one
// when there is none.
func (rr *referrersReader) fallback(ctx context.Context, subject digest.Digest) (ocispec.Index, error) {
	idx, _, err := rr.getIndex(ctx, rr.base+"/manifests/"+FallbackTag(subject))
	return idx, err
}

// getIndex GETs an image index; found is false on 404.
func (rr *referrersReader) getIndex(ctx context.Context, url string) (idx ocispec.Index, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return idx, false, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	res, err := rr.do(ctx, req)
	if err != nil {
		return idx, false, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return idx, false, nil
	default:
		return idx, false, &statusError{URL: url, StatusCode: res.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxReferrersList+1))
	if err != nil {
		return idx, false, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > maxReferrersList {
		return idx, false, fmt.Errorf("GET %s: more than %d bytes", url, maxReferrersList)
	}
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	if err := json.Unmarshal(b, &idx); err != nil || (idx.MediaType != ocispec.MediaTypeImageIndex && ct != ocispec.MediaTypeImageIndex) {
		return idx, false, fmt.Errorf("GET %s: %w (a %q)", url, errNotIndex, ct)
	}
	return idx, true, nil
}

// do sends req, without credentials until the registry asks for them.
func (rr *referrersReader) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	rr.mu.Lock()
	c := rr.authed
	rr.mu.Unlock()
	if c != nil {
		return c.Do(req)
	}
	res, err := rr.plain.Do(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) //nolint:errcheck // draining, to reuse the connection
	res.Body.Close()
	rt, err := rr.auth(ctx)
	if err != nil {
		return nil, err
	}
	c = &http.Client{Transport: rt}
	rr.mu.Lock()
	rr.authed = c
	rr.mu.Unlock()
	return c.Do(req.Clone(ctx))
}
