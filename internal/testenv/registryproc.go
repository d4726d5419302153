package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// startProcess writes the registry's configuration and starts it. Both
// implementations read the same configuration: a filesystem store under
// r.dir, the access log on (the requests Requests parses), http.tls and
// auth.htpasswd when asked for.
func (r *Registry) startProcess(t testing.TB) {
	t.Helper()
	bin, version := registryBinary(t, r.Implementation)
	r.Version = version
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	r.Host = "127.0.0.1:" + strconv.Itoa(port)

	// A fixed http.secret, or both warn that they made one up.
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}
http: {addr: %q, secret: %q`, filepath.Join(r.dir, "data"), r.Host, hex.EncodeToString(secret))
	if r.TLS {
		cert, key, err := r.writeCert()
		if err != nil {
			t.Fatalf("registry certificate: %v", err)
		}
		cfg += fmt.Sprintf(", tls: {certificate: %q, key: %q}", cert, key)
	}
	cfg += "}\n"
	if r.token {
		cfg += r.startTokenServer(t)
	} else if r.User != "" {
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
	cmd.Env = registryEnv(r.Implementation)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", r.Implementation, err)
	}
	r.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // killed on cleanup
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cmd.Process.Kill() //nolint:errcheck // may have exited
			<-done
		})
	}
	if err := r.waitReady(done); err != nil {
		r.stop()
		t.Fatalf("registry %s: %v\n%s", r, err, r.Log())
	}
}

// registryEnv is the environment of a registry process: this process's,
// without the REGISTRY_* variables through which a machine's settings
// would override the configuration. distribution v3 also gets
// OTEL_TRACES_EXPORTER=none, or it keeps trying to send traces to
// localhost:4318.
func registryEnv(impl Implementation) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	if impl == Distribution {
		env = append(env, "OTEL_TRACES_EXPORTER=none")
	}
	return env
}

// registryPrograms are each implementation's program and what its
// --version must print: distribution 2.8 is Debian's docker-registry,
// v3 is go install'ed as registry (by .ci/setup into ToolsDir), a name
// another program on PATH might have.
var registryPrograms = map[Implementation]struct{ name, module string }{
	DockerRegistry: {"docker-registry", "github.com/docker/distribution"},
	Distribution:   {"registry", "github.com/distribution/distribution/v3"},
}

var registryVersions sync.Map // program path → version, or error

// registryBinary returns impl's program and its version, skipping the
// test when it is missing (failing under RequireToolsEnv) and failing it
// when the program found is not impl.
func registryBinary(t testing.TB, impl Implementation) (path, version string) {
	t.Helper()
	p := registryPrograms[impl]
	bin := Tool(t, p.name)
	v, ok := registryVersions.Load(bin)
	if !ok {
		out, err := exec.Command(bin, "--version").Output()
		// "docker-registry github.com/docker/distribution 2.8.2+ds1"
		f := strings.Fields(string(out))
		switch {
		case err != nil:
			v = fmt.Errorf("%s --version: %w", bin, err)
		case len(f) != 3 || f[1] != p.module:
			v = fmt.Errorf("%s --version says %q, not %s: not %s", bin, strings.TrimSpace(string(out)), p.module, impl)
		default:
			v = f[2]
		}
		registryVersions.Store(bin, v)
	}
	if err, ok := v.(error); ok {
		t.Fatal(err)
	}
	return bin, v.(string)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /v2/ until it answers 200, or 401 when auth is on.
func (r *Registry) waitReady(exited <-chan struct{}) error {
	c, err := r.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	answered := 0
	for {
		res, err := c.Get(r.URL() + "/v2/")
		if err == nil {
			res.Body.Close()
			answered++
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return r.waitLogged(answered, deadline)
			}
			err = fmt.Errorf("GET /v2/: %s", res.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited: %w", r.Implementation, err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 15s: %w", err)
		}
	}
}

// waitLogged waits until the access log holds n requests (waitReady's
// answered probes): the log is written after the response, and a test's
// first Mark must come after the probes' lines, or Requests would count
// them.
func (r *Registry) waitLogged(n int, deadline time.Time) error {
	for len(parseAccessLog(r.log.String())) < n {
		if time.Now().After(deadline) {
			return errors.New("ready, but no request in the access log")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
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
