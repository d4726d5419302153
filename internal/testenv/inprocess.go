package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// maxManifest bounds the manifests the registry in process reads to check
// their blobs, as distribution does (4 MiB).
const maxManifest = 4 << 20

// StartInProcessRegistry starts go-containerregistry's registry
// (pkg/registry) behind an httptest.Server on 127.0.0.1, for fast engine
// tests that need no installed program: it runs wherever `go test` does.
// The real registries (StartRegistry) stay the reference; this one is
// coverage beside them.
//
// It serves plain HTTP without auth: WithTLSAuth fails the test (use
// StartRegistry). It keeps everything in memory, an upload whole: small
// images only. Host, Mark, Requests and Log work as for a process
// (Requests: method, path with its query, status), CPUTime is 0 and
// DataDir "".
//
// go-containerregistry's registry keeps one blob store for all
// repositories, does not mount across repositories (it answers a mount
// request 202, as the spec allows, opening an upload), and stores an image
// manifest whatever it references. A thin handler in front gives it what
// the engine's tests rely on in distribution: a blob exists in a
// repository only once pushed or mounted there (a HEAD or GET elsewhere
// answers 404 BLOB_UNKNOWN); POST ?mount=&from= of a blob the source
// repository has answers 201 and adds it; a manifest whose config or
// layers the repository lacks is refused with 400 MANIFEST_BLOB_UNKNOWN.
func StartInProcessRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	r := &Registry{Implementation: InProcess, log: &syncBuffer{}}
	for _, o := range opts {
		o(r)
	}
	if r.Implementation != InProcess {
		t.Fatalf("StartInProcessRegistry: implementation %q: use StartRegistry", r.Implementation)
	}
	if r.TLS || r.User != "" {
		t.Fatal("StartInProcessRegistry serves plain HTTP without auth: use StartRegistry for TLS and auth")
	}
	f := &frontend{
		next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(r.referrers)),
		log:  r.log,
		has:  map[string]map[string]bool{},
	}
	srv := httptest.NewServer(f)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	var once sync.Once
	r.stop = func() { once.Do(srv.Close) }
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("%s requests:\n%s", r, tail(r.Requests(0), 60))
		}
	})
	return r
}

// frontend scopes go-containerregistry's blobs to repositories, mounts
// across them, checks a manifest's blobs, and logs every request in the
// access log's format (see accessLine).
type frontend struct {
	next http.Handler
	log  io.Writer

	mu  sync.Mutex
	has map[string]map[string]bool // repository → blob digests it holds
}

func (f *frontend) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	f.serve(sw, req)
	// Written before the response leaves the handler, so a client that
	// has its answer finds the request in the log.
	fmt.Fprintf(f.log, "%s - - [%s] \"%s %s %s\" %d %d \"\" %q\n", req.RemoteAddr,
		time.Now().Format("02/Jan/2006:15:04:05 -0700"), req.Method, req.RequestURI, req.Proto,
		sw.status, sw.written, req.UserAgent())
}

func (f *frontend) serve(w *statusWriter, req *http.Request) {
	repo, kind, rest, ok := splitV2(req.URL.Path)
	if !ok {
		f.next.ServeHTTP(w, req)
		return
	}
	q := req.URL.Query()
	switch {
	case kind == "blobs" && (req.Method == http.MethodHead || req.Method == http.MethodGet) && !strings.HasPrefix(rest, "uploads"):
		if !f.holds(repo, rest) {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry", rest)
			return
		}
	case kind == "blobs" && req.Method == http.MethodPost && q.Get("mount") != "":
		if d := q.Get("mount"); f.holds(q.Get("from"), d) {
			f.add(repo, d)
			w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d)
			w.Header().Set("Docker-Content-Digest", d)
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusCreated)
			return
		}
		// Not there to mount: an upload session, as distribution opens.
	case kind == "blobs" && req.Method == http.MethodDelete:
		f.mu.Lock()
		delete(f.has[repo], rest)
		f.mu.Unlock()
	case kind == "manifests" && req.Method == http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: "+err.Error(), nil)
			return
		}
		if len(body) > maxManifest {
			writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest too large", nil)
			return
		}
		if missing := f.missingBlobs(repo, body); missing != "" {
			writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", missing)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	f.next.ServeHTTP(w, req)
	// A blob is stored: a PUT closing an upload, or a monolithic POST.
	if kind == "blobs" && w.status == http.StatusCreated && q.Get("digest") != "" &&
		(req.Method == http.MethodPut || req.Method == http.MethodPost) {
		f.add(repo, q.Get("digest"))
	}
}

func (f *frontend) holds(repo, digest string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has[repo][digest]
}

func (f *frontend) add(repo, digest string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.has[repo] == nil {
		f.has[repo] = map[string]bool{}
	}
	f.has[repo][digest] = true
}

// missingBlobs returns the first blob an image manifest references that
// repo does not hold, or "". An index's manifests are go-containerregistry's
// to check (it does).
func (f *frontend) missingBlobs(repo string, body []byte) string {
	var m struct {
		Config *struct{ Digest string }  `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return "" // go-containerregistry answers what it makes of it
	}
	var blobs []string
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range blobs {
		if !f.holds(repo, d) {
			return d
		}
	}
	return ""
}

// splitV2 splits /v2/REPO/KIND/REST, KIND being blobs or manifests.
func splitV2(p string) (repo, kind, rest string, ok bool) {
	s, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", "", false
	}
	for _, k := range []string{"blobs", "manifests"} {
		if i := strings.LastIndex(s, "/"+k+"/"); i > 0 {
			return s[:i], k, s[i+len(k)+2:], true
		}
	}
	return "", "", "", false
}

// writeError answers as distribution does: {"errors":[{code,message,detail}]}.
func writeError(w http.ResponseWriter, status int, code, message string, detail any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck // the client may be gone
		"errors": []map[string]any{{"code": code, "message": message, "detail": detail}},
	})
}

// statusWriter records the status and the number of body bytes written.
type statusWriter struct {
	http.ResponseWriter
	status      int
	written     int64
	wroteHeader bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}
