package testenv

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RequireToolsEnv names the environment variable that turns a missing tool
// from a skipped test into a failed one. CI sets it to 1.
const RequireToolsEnv = "NIXPUSH_REQUIRE_TOOLS"

// Tool returns the path of the program name. When it is missing, the test
// is skipped, or fails if RequireToolsEnv is 1. Asking for a Nix command
// (nix, nix-build, …) also isolates this process's Nix configuration from
// the machine's (see nixConfig).
func Tool(t testing.TB, name string) string {
	t.Helper()
	if strings.HasPrefix(name, "nix") && name != "nixpush" {
		nixConfig(t)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireToolsEnv) == "1" {
			t.Fatalf("%s is required (%s=1) but not found: %v", name, RequireToolsEnv, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// Registry is a docker-registry (Debian's distribution 2.8) serving on a
// free 127.0.0.1 port, from a temporary directory, stopped when the test
// ends. Every request it answers is logged; Requests reads them back.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// TLS says the registry serves HTTPS with a certificate for 127.0.0.1
	// signed by the CA in CertDir/ca.crt.
	TLS     bool
	CertDir string
	// User and Password are the only htpasswd account, when set.
	User, Password string

	dir  string
	log  *syncBuffer
	pid  int
	stop func() // kills the process and waits for it
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*Registry)

// WithTLSAuth serves HTTPS and requires basic auth as user.
func WithTLSAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.TLS, r.User, r.Password = true, user, password }
}

// StartRegistry starts a registry for the test. The certificate and the
// htpasswd file are made in Go, so no password ever appears in a child
// process's arguments.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	bin := Tool(t, "docker-registry")
	r := &Registry{dir: t.TempDir(), log: &syncBuffer{}}
	for _, o := range opts {
		o(r)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	r.Host = "127.0.0.1:" + strconv.Itoa(port)

	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}
http: {addr: %q`, filepath.Join(r.dir, "data"), r.Host)
	if r.TLS {
		cert, key, err := r.writeCert()
		if err != nil {
			t.Fatalf("registry certificate: %v", err)
		}
		cfg += fmt.Sprintf(", tls: {certificate: %q, key: %q}", cert, key)
	}
	cfg += "}\n"
	if r.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth: {htpasswd: {realm: nixpush-test, path: %q}}\n", htpasswd)
	}
	cfgPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	r.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // killed on cleanup
	r.stop = func() {
		cmd.Process.Kill() //nolint:errcheck // may have exited
		<-done
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("registry %s requests:\n%s", r.Host, tail(r.Requests(0), 60))
		}
	})
	if err := r.waitReady(done); err != nil {
		t.Fatalf("registry on %s: %v\n%s", r.Host, err, r.Log())
	}
	return r
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the registry before the test ends and deletes what it
// stored (benchmarks that start many registries free their disk); its
// request log stays readable.
func (r *Registry) Stop() error {
	r.stop()
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

// waitReady polls /v2/ until it answers 200, or 401 when auth is on.
func (r *Registry) waitReady(exited <-chan struct{}) error {
	c, err := r.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := c.Get(r.URL() + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", res.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 15s: %w", err)
		}
	}
}

// writeCert makes a self-signed certificate for 127.0.0.1 and localhost and
// puts it in CertDir/ca.crt, the layout of containers' certs.d directories.
func (r *Registry) writeCert() (cert, key string, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	r.CertDir = filepath.Join(r.dir, "certs")
	if err := os.MkdirAll(r.CertDir, 0o755); err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for _, f := range []struct {
		path string
		data []byte
	}{
		{cert, certPEM},
		{filepath.Join(r.CertDir, "ca.crt"), certPEM},
		{key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return "", "", err
		}
	}
	return cert, key, nil
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
// used so far, read from /proc; 0 when it cannot be read. Benchmarks use it
// to tell a client's cost from the registry's on a shared machine.
func (r *Registry) CPUTime() time.Duration {
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

// DataDir is the directory where the registry stores blobs and manifests.
func (r *Registry) DataDir() string { return filepath.Join(r.dir, "data") }

// Mark returns a position in the log, for Requests.
func (r *Registry) Mark() int { return r.log.Len() }

// Request is one request the registry answered.
type Request struct {
	Method, Path string
	Status       int
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

// accessLine matches the access log's combined format:
// 127.0.0.1 - - [time] "HEAD /v2/x/blobs/sha256:… HTTP/1.1" 200 0 "" "agent"
var accessLine = regexp.MustCompile(`"([A-Z]+) (/v2/\S*) HTTP/[0-9.]+" (\d{3}) `)

// Requests returns the requests logged since mark (0: all).
func (r *Registry) Requests(mark int) []Request {
	// The access log is written when a response completes; give the last
	// one a moment to arrive.
	time.Sleep(100 * time.Millisecond)
	var out []Request
	sc := bufio.NewScanner(strings.NewReader(r.log.From(mark)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		status, _ := strconv.Atoi(m[3])
		out = append(out, Request{Method: m[1], Path: m[2], Status: status})
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
