package imagecopy_test

import (
	"context"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
)

// TestRetry pushes through a proxy that drops its first connections: the
// copy fails without retries and succeeds with them, each try with a new
// client (containers/image remembers a failed ping for a client's life).
func TestRetry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	ref, err := transport.NewReference(f.path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		retries int
		wantErr bool
	}{
		{"no retries", 0, true},
		{"two retries", 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// containers/image tries HTTPS, then HTTP: dropping two
			// connections fails a client's ping. The two questions for the
			// manifest (each a new client) fail first, and are only
			// questions not answered; then the blobs' client fails.
			proxy := testenv.StartTCPProxy(t, reg.Host, testenv.TCPProxy{DropFirst: 6})
			dest, err := imagecopy.ParseReference("docker://" + proxy + "/retry:v1")
			if err != nil {
				t.Fatal(err)
			}
			opts := append(statelessOpts(t, reg), imagecopy.WithRegistryOptions(registry.WithRetry(tc.retries, 10*time.Millisecond)))
			_, err = imagecopy.CopyImage(context.Background(), ref, dest, opts...)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}
