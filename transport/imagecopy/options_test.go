package imagecopy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport/registry"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"empty tag", WithAdditionalTags("")},
		{"empty mount", WithMountFrom("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := makeOptions([]Option{tc.opt}); err == nil {
				t.Errorf("accepted")
			}
		})
	}
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
		{"destination", local, remote, []Option{WithRegistryOptions(registry.WithTLSVerify(false), registry.WithCredentials("u", "pw"))}},
		{"source", remote, local, []Option{WithSourceRegistryOptions(registry.WithTLSVerify(false), registry.WithCredentials("u", "pw"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No credentials from the machine: a fresh HOME, an empty auth file.
			t.Setenv("HOME", t.TempDir())
			t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
			auth := filepath.Join(t.TempDir(), "auth.json")
			if err := os.WriteFile(auth, []byte(`{"auths": {}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := append(tc.opts, WithRegistryOptions(registry.WithAuthFile(auth)), WithSourceRegistryOptions(registry.WithAuthFile(auth)))
			_, err := CopyImage(t.Context(), tc.src, tc.dest, opts...)
			if !errors.Is(err, registry.ErrInsecureCredentials) {
				t.Errorf("err = %v, want ErrInsecureCredentials", err)
			}
		})
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
