package push

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
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

// TestDestinationSystemContexts: credentials go only to the registry they
// are for, and never without TLS verification to a remote host unless it
// is named.
func TestDestinationSystemContexts(t *testing.T) {
	a, b := named(t, "a.example/app:v1"), named(t, "b.example/app:v1")
	local := named(t, "127.0.0.1:5000/app:v1")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"auths": {"b.example": {"auth": "dXNlcjpwdw=="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	insecure := WithDestinationTLSVerify(false)
	for _, tc := range []struct {
		name string
		refs []reference.Named
		opts []Option
		err  error // nil: accepted
	}{
		{"shared creds, one registry", []reference.Named{a, named(t, "a.example/other:v1")}, []Option{WithDestinationCredentials("u", "pw")}, nil},
		{"shared creds, two registries", []reference.Named{a, b}, []Option{WithDestinationCredentials("u", "pw")}, ErrSharedCredentials},
		{"creds for one of two", []reference.Named{a, b}, []Option{WithDestinationCredentialsFor("a.example", "u", "pw")}, nil},
		{"creds for a registry not reached", []reference.Named{a}, []Option{WithDestinationCredentialsFor("a.example:5000", "u", "pw")}, ErrUnusedCredentials},
		{"no TLS verification, creds, remote", []reference.Named{a}, []Option{insecure, WithDestinationCredentials("u", "pw")}, ErrInsecureCredentials},
		{"no TLS verification, creds-for, remote", []reference.Named{a, local}, []Option{insecure, WithDestinationCredentialsFor("a.example", "u", "pw")}, ErrInsecureCredentials},
		{"no TLS verification, auth file, remote", []reference.Named{b}, []Option{insecure, WithAuthFile(authFile)}, ErrInsecureCredentials},
		{"no TLS verification, no creds, remote", []reference.Named{a}, []Option{insecure}, nil},
		{"no TLS verification, creds, loopback", []reference.Named{local, named(t, "localhost:5000/app:v1")}, []Option{insecure, WithDestinationCredentialsFor("127.0.0.1:5000", "u", "pw")}, nil},
		{"no TLS verification, creds, named host", []reference.Named{a}, []Option{insecure, WithDestinationCredentials("u", "pw"), WithInsecureCredentialsHosts("a.example")}, nil},
		{"named host is exact", []reference.Named{named(t, "a.example:5000/app:v1")}, []Option{insecure, WithDestinationCredentials("u", "pw"), WithInsecureCredentialsHosts("a.example")}, ErrInsecureCredentials},
		{"TLS verified, creds, remote", []reference.Named{a}, []Option{WithDestinationTLSVerify(true), WithDestinationCredentials("u", "pw")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, err := DestinationSystemContexts(tc.refs, append(isolated(t), tc.opts...)...)
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
		sys, err := DestinationSystemContexts([]reference.Named{a, b}, append(isolated(t), WithDestinationCredentialsFor("a.example", "u", "pw"))...)
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

// TestCopyRefusesInsecureCredentials: copy applies the same rule to both
// ends, before any connection (the hosts do not resolve).
func TestCopyRefusesInsecureCredentials(t *testing.T) {
	remote, err := docker.ParseReference("//registry.invalid/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	local, err := docker.ParseReference("//127.0.0.1:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		src, dest types.ImageReference
		opts      []Option
	}{
		{"destination", local, remote, []Option{WithDestinationTLSVerify(false), WithDestinationCredentials("u", "pw")}},
		{"source", remote, local, []Option{WithSourceTLSVerify(false), WithSourceCredentials("u", "pw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CopyImage(t.Context(), tc.src, tc.dest, append(isolated(t), tc.opts...)...)
			if !errors.Is(err, ErrInsecureCredentials) {
				t.Errorf("err = %v, want ErrInsecureCredentials", err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost": true, "LOCALHOST:443": true, "[::1]:5000": true,
		"registry.example.com": false, "10.0.0.1:5000": false, "localhost.example.com": false, "[::2]:5000": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestCredentialOptions: no empty password, hosts without paths, one
// credential per host.
func TestCredentialOptions(t *testing.T) {
	for name, opts := range map[string][]Option{
		"empty password":         {WithDestinationCredentials("u", "")},
		"empty source password":  {WithSourceCredentials("u", "")},
		"creds-for path":         {WithDestinationCredentialsFor("a.example/app", "u", "pw")},
		"creds-for empty host":   {WithDestinationCredentialsFor("", "u", "pw")},
		"creds-for twice":        {WithDestinationCredentialsFor("a.example", "u", "pw"), WithDestinationCredentialsFor("a.example", "v", "pw")},
		"creds-for no password":  {WithDestinationCredentialsFor("a.example", "u", "")},
		"insecure host userinfo": {WithInsecureCredentialsHosts("u@a.example")},
	} {
		if _, err := makeOptions(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCheckAdditionalTags: a tag on another registry is refused before
// anything is copied, saying so (not "mount-from").
func TestCheckAdditionalTags(t *testing.T) {
	dest, err := docker.ParseReference("//127.0.0.1:5000/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tag string
		err error // nil: accepted
	}{
		{"latest", nil},
		{"127.0.0.1:5000/mirror:v1", nil},
		{"other.example/app:v1", ErrOtherRegistry},
		{"app:v2", ErrOtherRegistry}, // no host: docker.io
		{"team/app:v2", ErrOtherRegistry},
	} {
		err := checkAdditionalTags(dest, []string{tc.tag})
		if (tc.err == nil && err != nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: err = %v, want %v", tc.tag, err, tc.err)
		}
	}
}
