package cli_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

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
			conns := new(atomic.Int32)
			host := testenv.StartTCPProxy(t, reg.Host, testenv.TCPProxy{Accepted: conns})
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
