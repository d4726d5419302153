package registry

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/docker/reference"
)

func named(t *testing.T, s string) reference.Named {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// isolated returns options that read no credentials from the machine: a
// fresh HOME and an empty auth file.
func isolated(t *testing.T) []Option {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", "")
	auth := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(auth, []byte(`{"auths": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Option{WithAuthFile(auth)}
}

// TestSystemContexts: credentials go only to the registry they
// are for, and never without TLS verification to a remote host unless it
// is named.
func TestSystemContexts(t *testing.T) {
	a, b := named(t, "a.example/app:v1"), named(t, "b.example/app:v1")
	local := named(t, "127.0.0.1:5000/app:v1")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"auths": {"b.example": {"auth": "dXNlcjpwdw=="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	insecure := WithTLSVerify(false)
	for _, tc := range []struct {
		name string
		refs []reference.Named
		opts []Option
		err  error // nil: accepted
	}{
		{"shared creds, one registry", []reference.Named{a, named(t, "a.example/other:v1")}, []Option{WithCredentials("u", "pw")}, nil},
		{"shared creds, two registries", []reference.Named{a, b}, []Option{WithCredentials("u", "pw")}, ErrSharedCredentials},
		{"creds for one of two", []reference.Named{a, b}, []Option{WithCredentialsFor("a.example", "u", "pw")}, nil},
		{"creds for a registry not reached", []reference.Named{a}, []Option{WithCredentialsFor("a.example:5000", "u", "pw")}, ErrUnusedCredentials},
		{"no TLS verification, creds, remote", []reference.Named{a}, []Option{insecure, WithCredentials("u", "pw")}, ErrInsecureCredentials},
		{"no TLS verification, creds-for, remote", []reference.Named{a, local}, []Option{insecure, WithCredentialsFor("a.example", "u", "pw")}, ErrInsecureCredentials},
		{"no TLS verification, auth file, remote", []reference.Named{b}, []Option{insecure, WithAuthFile(authFile)}, ErrInsecureCredentials},
		{"no TLS verification, no creds, remote", []reference.Named{a}, []Option{insecure}, nil},
		{"no TLS verification, creds, loopback", []reference.Named{local, named(t, "localhost:5000/app:v1")}, []Option{insecure, WithCredentialsFor("127.0.0.1:5000", "u", "pw")}, nil},
		{"no TLS verification, creds, named host", []reference.Named{a}, []Option{insecure, WithCredentials("u", "pw"), WithInsecureCredentialsHosts("a.example")}, nil},
		{"named host is exact", []reference.Named{named(t, "a.example:5000/app:v1")}, []Option{insecure, WithCredentials("u", "pw"), WithInsecureCredentialsHosts("a.example")}, ErrInsecureCredentials},
		{"TLS verified, creds, remote", []reference.Named{a}, []Option{WithTLSVerify(true), WithCredentials("u", "pw")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, err := SystemContexts(tc.refs, append(isolated(t), tc.opts...)...)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.refs {
				if sys[reference.Domain(r)] == nil {
					t.Errorf("no settings for %s", reference.Domain(r))
				}
			}
		})
	}

	t.Run("creds-for reach only their registry", func(t *testing.T) {
		sys, err := SystemContexts([]reference.Named{a, b}, append(isolated(t), WithCredentialsFor("a.example", "u", "pw"))...)
		if err != nil {
			t.Fatal(err)
		}
		if c := sys["a.example"].DockerAuthConfig; c == nil || c.Username != "u" || c.Password != "pw" {
			t.Errorf("a.example: credentials %+v", c)
		}
		if c := sys["b.example"].DockerAuthConfig; c != nil {
			t.Errorf("b.example got a.example's credentials")
		}
	})
}

// TestCredentialOptions: no empty password, hosts without paths, one
// credential per host.
func TestCredentialOptions(t *testing.T) {
	for name, opts := range map[string][]Option{
		"empty password":         {WithCredentials("u", "")},
		"empty user":             {WithCredentials("", "pw")},
		"creds-for path":         {WithCredentialsFor("a.example/app", "u", "pw")},
		"creds-for empty host":   {WithCredentialsFor("", "u", "pw")},
		"creds-for twice":        {WithCredentialsFor("a.example", "u", "pw"), WithCredentialsFor("a.example", "v", "pw")},
		"creds-for no password":  {WithCredentialsFor("a.example", "u", "")},
		"insecure host userinfo": {WithInsecureCredentialsHosts("u@a.example")},
	} {
		if _, err := makeOptions(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
