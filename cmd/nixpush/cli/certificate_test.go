package cli_test

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// countConnections forwards TCP connections from a new 127.0.0.1 port to
// upstream and counts them; TLS passes through untouched. It returns the
// port's "127.0.0.1:PORT" and the count.
func countConnections(t *testing.T, upstream string) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c) //nolint:errcheck // ends with the connection
				io.Copy(c, u)    //nolint:errcheck // ends with the connection
			}()
		}
	}()
	return l.Addr().String(), &n
}

// TestUntrustedCertificateFailsFast: a registry whose certificate the
// client does not trust (here: a certificate directory without its CA)
// fails push and copy at the first try, with a message saying what to
// give, instead of retrying every blob.
func TestUntrustedCertificateFailsFast(t *testing.T) {
	const user, password = "nixpush", "s3cret-Cert-pw"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc, _ := fixture(t)
	untrusting := "--dest-cert-dir=" + t.TempDir()
	creds := "--dest-creds=" + user + ":" + password

	for _, c := range []struct {
		name string
		args []string
	}{
		{"push", []string{"push", untrusting, creds, "--retry-times=5", "--retry-delay=10ms", "nix:" + desc}},
		{"copy", []string{"copy", untrusting, creds, "--retry-times=3", "--retry-delay=10ms", "nix:" + desc}},
	} {
		t.Run(c.name, func(t *testing.T) {
			host, conns := countConnections(t, reg.Host)
			r := run(t, bin, nil, append(c.args, "docker://"+host+"/cert/app:v1")...)
			if r.err == nil {
				t.Fatalf("%s succeeded against an untrusted certificate", c.name)
			}
			t.Logf("stderr:\n%s", r.stderr)
			if !strings.Contains(r.stderr, "TLS certificate could not be verified") || !strings.Contains(r.stderr, "--dest-cert-dir") {
				t.Errorf("stderr does not say the certificate is not trusted and what to give:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "retrying") || strings.Contains(r.stderr, "gave up") {
				t.Errorf("retried:\n%s", r.stderr)
			}
			// One try: a ping of /v2/ decides, once per blob at most (the
			// image has two, its layer and its config, which may be tried
			// at the same time); each retry would connect again.
			if n := conns.Load(); n < 1 || n > 2 {
				t.Errorf("%d connections to the registry, want 1 or 2", n)
			}
			if strings.Contains(r.stderr+r.stdout, password) {
				t.Errorf("the password appears in the output")
			}
		})
	}
}
