package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/transport/registry"
)

// TestParseDestination: a destination names its registry host and a tag;
// a name without a host is an error, not Docker Hub, and errors never
// echo user information.
func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error // nil: parses to want
	}{
		{in: "docker://registry.example.com/app:v1", want: "registry.example.com/app:v1"},
		{in: "127.0.0.1:5000/team/app:v1", want: "127.0.0.1:5000/team/app:v1"},
		{in: "localhost/app:v1", want: "localhost/app:v1"},
		{in: "docker://docker.io/app:v1", want: "docker.io/library/app:v1"},
		{in: "docker.io/team/app:v1", want: "docker.io/team/app:v1"},
		{in: "index.docker.io/team/app:v1", want: "docker.io/team/app:v1"},
		{in: "app:v1", err: registry.ErrNoRegistry},
		{in: "docker://app:v1", err: registry.ErrNoRegistry},
		{in: "team/app:v1", err: registry.ErrNoRegistry},
		{in: "docker://library/app:v1", err: registry.ErrNoRegistry},
	} {
		got, err := registry.ParseDestination(tc.in)
		switch {
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("ParseDestination(%q) = %v, %v; want error %v", tc.in, got, err, tc.err)
		case tc.err == nil && err != nil:
			t.Errorf("ParseDestination(%q): %v", tc.in, err)
		case tc.err == nil && got.String() != tc.want:
			t.Errorf("ParseDestination(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{
		"registry.example.com/app", // no tag
		"registry.example.com/app@sha256:" + strings.Repeat("0", 64),
		"",
		"docker://ci:s3cret-pw@registry.example.com/app:v1",
		"ci:s3cret-pw@registry.example.com/app:v1",
	} {
		_, err := registry.ParseDestination(in)
		if err == nil {
			t.Errorf("ParseDestination(%q) succeeded", in)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("ParseDestination(%q): error echoes the password: %v", in, err)
		}
	}
}
