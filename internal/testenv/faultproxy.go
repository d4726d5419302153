package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultKind is what a FaultProxy does to a request a rule matches.
type FaultKind int

const (
	// Drop forwards the first FaultRule.AfterBytes bytes of the request
	// body upstream, then closes the client's connection without an
	// answer: a network failure in the middle of a blob upload. A body
	// shorter than that is dropped at its end.
	Drop FaultKind = iota
	// Unavailable answers 503 Service Unavailable.
	Unavailable
	// TooManyRequests answers 429 Too Many Requests with Retry-After: 1.
	TooManyRequests
	// Unauthorized answers 401 Unauthorized, with a Basic challenge.
	Unauthorized
	// Forbidden answers 403 Forbidden.
	Forbidden
	// Hang reads the request body, then answers nothing until the client
	// gives up (or 30 seconds pass): a registry that stalls.
	Hang
	// RefuseMount forwards a cross-repository mount (POST
	// …/blobs/uploads/?mount=…&from=…) without its query, so the registry
	// opens an ordinary upload session (202) instead of mounting, as the
	// distribution spec allows. It matches only mount requests.
	RefuseMount
)

func (k FaultKind) String() string {
	switch k {
	case Drop:
		return "drop"
	case Unavailable:
		return "503"
	case TooManyRequests:
		return "429"
	case Unauthorized:
		return "401"
	case Forbidden:
		return "403"
	case Hang:
		return "hang"
	case RefuseMount:
		return "refuse-mount"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// FaultRule says which requests to fault and how. A request matches when
// its method is Method (any when empty) and its path contains PathContains.
type FaultRule struct {
	Method       string
	PathContains string
	// Times is how many matching requests to fault; -1 faults every one.
	Times int
	Kind  FaultKind
	// AfterBytes is where Drop cuts the request body.
	AfterBytes int64
}

// ProxyRequest is one request a FaultProxy saw.
type ProxyRequest struct {
	Method, Path string
	// Status is the status the client got: 0 for a dropped connection or
	// an upstream failure.
	Status int
	// Fault is the fault injected, if Faulted.
	Fault   FaultKind
	Faulted bool
}

func (q ProxyRequest) String() string {
	if q.Faulted {
		return fmt.Sprintf("%s %s %d (%s)", q.Method, q.Path, q.Status, q.Fault)
	}
	return fmt.Sprintf("%s %s %d", q.Method, q.Path, q.Status)
}

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a plain-HTTP
// registry, for the faults a real registry cannot be made to produce. It
// forwards every request no rule matches untouched, streaming bodies both
// ways, and rewrites the Location of upload sessions so they keep going
// through it.
type FaultProxy struct {
	// Host is the proxy's "127.0.0.1:PORT".
	Host     string
	upstream string

	mu    sync.Mutex
	rules []*FaultRule
	reqs  []ProxyRequest
}

// errDropped ends a request body the proxy is dropping.
var errDropped = errors.New("testenv: connection dropped by FaultProxy")

// faultKey holds, in a forwarded request's context, the FaultKind applied
// to it.
type faultKey struct{}

// StartFaultProxy starts a proxy to upstream ("HOST:PORT", plain HTTP),
// closed when the test ends.
func StartFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	p := &FaultProxy{upstream: upstream}
	target := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		FlushInterval: -1,
		ModifyResponse: func(res *http.Response) error {
			if loc := res.Header.Get("Location"); loc != "" {
				res.Header.Set("Location", strings.Replace(loc, "//"+upstream+"/", "//"+p.Host+"/", 1))
			}
			var fault *FaultKind
			if k, ok := res.Request.Context().Value(faultKey{}).(FaultKind); ok {
				fault = &k
			}
			p.record(res.Request.Method, res.Request.URL.Path, res.StatusCode, fault)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if k, ok := r.Context().Value(faultKey{}).(FaultKind); ok && k == Drop {
				p.record(r.Method, r.URL.Path, 0, &k)
				hangUp(w)
				return
			}
			p.record(r.Method, r.URL.Path, 0, nil)
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule := p.match(r)
		if rule == nil {
			rp.ServeHTTP(w, r)
			return
		}
		switch rule.Kind {
		case Drop:
			if r.ContentLength == 0 {
				k := rule.Kind
				p.record(r.Method, r.URL.Path, 0, &k)
				hangUp(w)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), faultKey{}, rule.Kind))
			r.Body = &cutBody{r: r.Body, left: rule.AfterBytes}
			rp.ServeHTTP(w, r)
			return
		case RefuseMount:
			r = r.WithContext(context.WithValue(r.Context(), faultKey{}, rule.Kind))
			r.URL.RawQuery = ""
			rp.ServeHTTP(w, r)
			return
		case Hang:
			io.Copy(io.Discard, r.Body) //nolint:errcheck // the client may abort it
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			k := rule.Kind
			p.record(r.Method, r.URL.Path, 0, &k)
			return
		case TooManyRequests:
			w.Header().Set("Retry-After", "1")
		case Unauthorized:
			w.Header().Set("WWW-Authenticate", `Basic realm="nixpush-faultproxy"`)
		}
		status := map[FaultKind]int{Unavailable: 503, TooManyRequests: 429, Unauthorized: 401, Forbidden: 403}[rule.Kind]
		k := rule.Kind
		p.record(r.Method, r.URL.Path, status, &k)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected by FaultProxy: %s"}]}`+"\n", k)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// URL returns the proxy's base URL.
func (p *FaultProxy) URL() string { return "http://" + p.Host }

// Fail adds a rule. Rules are tried in the order added; the first one
// matching a request with faults left applies.
func (p *FaultProxy) Fail(r FaultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Clear removes every rule.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Requests returns every request the proxy answered or dropped, in the
// order they completed.
func (p *FaultProxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.reqs...)
}

// Faults returns how many requests were faulted.
func (p *FaultProxy) Faults() int {
	n := 0
	for _, q := range p.Requests() {
		if q.Faulted {
			n++
		}
	}
	return n
}

func (p *FaultProxy) match(r *http.Request) *FaultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rule := range p.rules {
		if rule.Times == 0 || (rule.Method != "" && rule.Method != r.Method) || !strings.Contains(r.URL.Path, rule.PathContains) {
			continue
		}
		if rule.Kind == RefuseMount && r.URL.Query().Get("mount") == "" {
			continue
		}
		if rule.Times > 0 {
			rule.Times--
		}
		return rule
	}
	return nil
}

func (p *FaultProxy) record(method, path string, status int, fault *FaultKind) {
	q := ProxyRequest{Method: method, Path: path, Status: status}
	if fault != nil {
		q.Fault, q.Faulted = *fault, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, q)
}

// hangUp closes the client's connection without writing a response.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection all the same
	}
	conn.Close()
}

// cutBody reads at most left bytes of a request body, then fails.
type cutBody struct {
	r    io.ReadCloser
	left int64
}

func (c *cutBody) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errDropped
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	if err == io.EOF {
		return n, errDropped
	}
	return n, err
}

func (c *cutBody) Close() error { return c.r.Close() }
