package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigstoreKey generates a key with containers/image's generator and
// loads it back: the right passphrase gives the generated public key, a
// wrong one ErrSigningKey, other files a clear error; nothing is
// overwritten.
func TestSigstoreKey(t *testing.T) {
	dir := t.TempDir()
	pass := []byte("a passphrase")
	priv, pub, err := GenerateSigstoreKey(filepath.Join(dir, "k"), pass)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key %s: %v, mode %v; want 0600", priv, err, fi.Mode().Perm())
	}
	if _, _, err := GenerateSigstoreKey(filepath.Join(dir, "k"), pass); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second GenerateSigstoreKey: %v", err)
	}
	s, err := NewSigstoreSigner(priv, pass)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.PublicKey()) != string(want) {
		t.Errorf("public key %q, want %q", s.PublicKey(), want)
	}
	tmp := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s: %v", tmp, err)
	}

	for _, c := range []struct {
		name, file string
		pass       []byte
		sentinel   error
		want       string
	}{
		{"wrong passphrase", priv, []byte("another passphrase"), ErrSigningKey, priv},
		{"empty passphrase", priv, []byte{}, ErrSigningKey, priv},
		{"public key", pub, pass, nil, "not an encrypted sigstore private key"},
		{"missing", filepath.Join(dir, "nope"), pass, os.ErrNotExist, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSigstoreSigner(c.file, c.pass)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if c.sentinel != nil && !errors.Is(err, c.sentinel) {
				t.Errorf("error %v is not %v", err, c.sentinel)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
			if strings.Contains(err.Error(), string(c.pass)) && len(c.pass) > 0 {
				t.Errorf("error %q shows the passphrase", err)
			}
		})
	}
}
