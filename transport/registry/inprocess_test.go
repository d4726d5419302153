package registry

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/nixpush/nixpush/internal/testenv"
)

// InProcess is go-containerregistry's registry behind httptest, for tests
// that must run on any machine (go test ./...): it logs every request like
// testenv.Registry does, and the User-Agent of each.
//
// go-containerregistry keeps one blob store for all repositories and does
// not mount; a frontend here makes blobs belong to the repositories they
// were uploaded or mounted to (HEAD and GET elsewhere answer 404), and
// mounts (POST ?mount=&from= answers 201 when from holds the blob).
//
// TODO(lead): testenv.StartInProcessRegistry (the other half of #10) does
// the same; once it is merged, StartInProcess returns it and this type
// goes.
type InProcess struct {
	Host string

	mu     sync.Mutex
	log    []testenv.Request
	agents []string
	has    map[string]bool // REPO@DIGEST
	next   http.Handler
}

// StartInProcess starts an in-process registry for the test.
func StartInProcess(t testing.TB) *InProcess {
	t.Helper()
	r := &InProcess{has: map[string]bool{}, next: ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.Host = u.Host
	return r
}

// Mark returns a position in the log, for Requests.
func (r *InProcess) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// Requests returns the requests answered since mark.
func (r *InProcess) Requests(mark int) []testenv.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]testenv.Request(nil), r.log[mark:]...)
}

// UserAgents returns the User-Agent of each request since mark.
func (r *InProcess) UserAgents(mark int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.agents[mark:]...)
}

func (r *InProcess) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.serve(rec, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, testenv.Request{Method: req.Method, Path: req.URL.RequestURI(), Status: rec.status})
	r.agents = append(r.agents, req.UserAgent())
}

func (r *InProcess) serve(w *statusWriter, req *http.Request) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/blobs/")
	if !ok {
		r.next.ServeHTTP(w, req)
		return
	}
	q := req.URL.Query()
	switch {
	case (req.Method == http.MethodHead || req.Method == http.MethodGet) && !strings.HasPrefix(rest, "uploads"):
		if !r.holds(repo, rest) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			if req.Method == http.MethodGet {
				json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}}}) //nolint:errcheck // test server
			}
			return
		}
	case req.Method == http.MethodPost && q.Get("mount") != "":
		d := q.Get("mount")
		if from := q.Get("from"); from != "" && r.holds(from, d) {
			r.record(repo, d)
			w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d)
			w.Header().Set("Docker-Content-Digest", d)
			w.WriteHeader(http.StatusCreated)
			return
		}
		// Not mountable: an ordinary upload session, as the spec says.
		req.URL.RawQuery = ""
	}
	r.next.ServeHTTP(w, req)
	if d := q.Get("digest"); d != "" && w.status == http.StatusCreated {
		r.record(repo, d)
	}
}

func (r *InProcess) holds(repo, d string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.has[repo+"@"+d]
}

func (r *InProcess) record(repo, d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.has[repo+"@"+d] = true
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
