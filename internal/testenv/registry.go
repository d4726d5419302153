package testenv

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Implementation names a registry implementation the tests run against.
type Implementation string

const (
	// DockerRegistry is Debian's docker-registry (distribution 2.8), the
	// default.
	DockerRegistry Implementation = "docker-registry"
	// Distribution is the CNCF distribution v3 registry (`registry`),
	// which .ci/setup installs into ToolsDir.
	Distribution Implementation = "distribution"
	// InProcess is go-containerregistry's registry behind an
	// httptest.Server: see StartInProcessRegistry.
	InProcess Implementation = "in-process"
)

// RegistryEnv names the environment variable that chooses what
// StartRegistry runs: docker-registry (the default) or distribution.
const RegistryEnv = "NIXPUSH_TEST_REGISTRY"

// ImplementationFromEnv returns the implementation RegistryEnv chooses:
// DockerRegistry when it is unset or empty.
func ImplementationFromEnv() (Implementation, error) {
	switch v := Implementation(os.Getenv(RegistryEnv)); v {
	case "":
		return DockerRegistry, nil
	case DockerRegistry, Distribution:
		return v, nil
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q", RegistryEnv, v, DockerRegistry, Distribution)
	}
}

// Registry is a registry serving on a free 127.0.0.1 port, from a
// temporary directory, stopped when the test ends: a process
// (StartRegistry) or in this one (StartInProcessRegistry). Every request
// it answers is logged; Requests reads them back.
type Registry struct {
	// Implementation is what serves, and Version its version (as the
	// program reports it), so that a failure says which registry it
	// met.
	Implementation Implementation
	Version        string
	// Host is "127.0.0.1:PORT".
	Host string
	// TLS says the registry serves HTTPS with a certificate for 127.0.0.1
	// signed by the CA in CertDir/ca.crt.
	TLS     bool
	CertDir string
	// User and Password are the only htpasswd account, when set (or the
	// token server's, WithTokenAuth).
	User, Password string
	token          bool // bearer tokens from an in-process token server

	dir       string
	referrers bool // WithReferrersAPI
	log       *syncBuffer
	pid       int    // the process; 0 in process
	stop      func() // stops serving and waits for it
}

// RegistryOption configures StartRegistry and StartInProcessRegistry.
type RegistryOption func(*Registry)

// WithTLSAuth serves HTTPS and requires basic auth as user.
func WithTLSAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.TLS, r.User, r.Password = true, user, password }
}

// WithReferrersAPI serves the OCI 1.1 referrers API
// (GET /v2/NAME/referrers/DIGEST), which neither registry process has:
// StartInProcessRegistry only.
func WithReferrersAPI() RegistryOption {
	return func(r *Registry) { r.referrers = true }
}

// WithImplementation makes StartRegistry run impl whatever RegistryEnv
// says, for a test that needs one.
func WithImplementation(impl Implementation) RegistryOption {
	return func(r *Registry) { r.Implementation = impl }
}

// StartRegistry starts a registry process for the test: the
// implementation RegistryEnv names, or WithImplementation's. The
// certificate and the htpasswd file are made in Go, so no password ever
// appears in a child process's arguments.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	r := &Registry{dir: t.TempDir(), log: &syncBuffer{}}
	for _, o := range opts {
		o(r)
	}
	if r.Implementation == "" {
		impl, err := ImplementationFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		r.Implementation = impl
	}
	if r.Implementation != DockerRegistry && r.Implementation != Distribution {
		t.Fatalf("StartRegistry: implementation %q: want %q or %q (StartInProcessRegistry for %q)",
			r.Implementation, DockerRegistry, Distribution, InProcess)
	}
	r.startProcess(t)
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("%s requests:\n%s", r, tail(r.Requests(0), 60))
		}
	})
	return r
}

// String names the registry for failure messages: "distribution
// v3.1.2+unknown on 127.0.0.1:PORT".
func (r *Registry) String() string {
	s := string(r.Implementation)
	if r.Version != "" {
		s += " " + r.Version
	}
	return s + " on " + r.Host
}

// Stop stops the registry before the test ends and deletes what it
// stored (benchmarks that start many registries free their disk); its
// request log stays readable.
func (r *Registry) Stop() error {
	r.stop()
	if r.Implementation == InProcess {
		return nil
	}
	return os.RemoveAll(filepath.Join(r.dir, "data"))
}

// URL returns the registry's base URL.
func (r *Registry) URL() string {
	if r.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Client returns an HTTP client that trusts the registry's certificate.
func (r *Registry) Client() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.TLS {
		pem, err := os.ReadFile(filepath.Join(r.CertDir, "ca.crt"))
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// AuthFile writes a containers auth.json holding the registry's account,
// for tools such as skopeo that must not get the password as an argument.
func (r *Registry) AuthFile(t testing.TB) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	b, err := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// CPUTime returns the CPU time (user and system) the registry process has
// used so far, read from /proc; 0 when it cannot be read, and for a
// registry in process. Benchmarks use it to tell a client's cost from the
// registry's on a shared machine.
func (r *Registry) CPUTime() time.Duration {
	if r.pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.pid) + "/stat")
	if err != nil {
		return 0
	}
	// After "pid (comm) ", utime and stime are the 12th and 13th fields,
	// in clock ticks: 100 a second on Linux.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// Log returns everything the registry has logged.
func (r *Registry) Log() string { return r.log.String() }

// DataDir is the directory where the registry stores blobs and
// manifests; "" for a registry in process, which keeps them in memory.
func (r *Registry) DataDir() string {
	if r.Implementation == InProcess {
		return ""
	}
	return filepath.Join(r.dir, "data")
}

// Mark returns a position in the log, for Requests.
func (r *Registry) Mark() int { return r.log.Len() }

// Request is one request the registry answered.
type Request struct {
	Method, Path string
	Status       int
	// UserAgent is the client's User-Agent, as the access log quotes it.
	UserAgent string
}

func (q Request) String() string { return fmt.Sprintf("%s %s %d", q.Method, q.Path, q.Status) }

// IsBlobWrite says whether q uploads or mounts a blob: POST, PATCH or PUT
// under /blobs/.
func (q Request) IsBlobWrite() bool {
	return strings.Contains(q.Path, "/blobs/") && (q.Method == http.MethodPost || q.Method == http.MethodPatch || q.Method == http.MethodPut)
}

// IsManifestWrite says whether q writes a manifest.
func (q Request) IsManifestWrite() bool {
	return strings.Contains(q.Path, "/manifests/") && q.Method == http.MethodPut
}

// accessLine matches the access log's combined format, the same in
// distribution 2.8 and v3 (and written so by the registry in process):
// 127.0.0.1 - - [time] "HEAD /v2/x/blobs/sha256:… HTTP/1.1" 200 0 "" "agent"
var accessLine = regexp.MustCompile(`"([A-Z]+) (/v2/\S*) HTTP/[0-9.]+" (\d{3}) (?:\S+ "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)")?`)

// Requests returns the requests logged since mark (0: all).
func (r *Registry) Requests(mark int) []Request {
	// A registry process writes its access log when a response completes;
	// give the last one a moment to arrive. In process, the line is
	// written before the response leaves.
	if r.Implementation != InProcess {
		time.Sleep(100 * time.Millisecond)
	}
	return parseAccessLog(r.log.From(mark))
}

// parseAccessLog returns the requests of the access log's lines in log.
func parseAccessLog(log string) []Request {
	var out []Request
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		status, _ := strconv.Atoi(m[3])
		out = append(out, Request{Method: m[1], Path: m[2], Status: status, UserAgent: m[4]})
	}
	return out
}

// syncBuffer is a log shared by the registry's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.b)
}

func (s *syncBuffer) String() string { return s.From(0) }

func (s *syncBuffer) From(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i > len(s.b) {
		i = len(s.b)
	}
	return string(s.b[i:])
}

// tail formats the last n requests.
func tail(reqs []Request, n int) string {
	if len(reqs) > n {
		reqs = reqs[len(reqs)-n:]
	}
	var b strings.Builder
	for _, q := range reqs {
		b.WriteString(q.String())
		b.WriteByte('\n')
	}
	return b.String()
}
