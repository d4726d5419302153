package imagecopy

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/types"
)

// TestDaemonSocket: a docker-daemon: destination whose socket is missing
// fails before any work, naming the socket; an existing socket passes the
// check (the daemon itself is not needed for it).
func TestDaemonSocket(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	_, err := Copy(context.Background(), "dir:"+dir, "docker-daemon:example/app:v1",
		WithDestinationDaemonHost("unix://"+missing))
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "no Docker daemon") {
		t.Fatalf("error %v does not name the missing socket %s", err, missing)
	}

	present := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", present)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ref, err := ParseReference("docker-daemon:example/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDaemonSocket(ref, &types.SystemContext{DockerDaemonHost: "unix://" + present}); err != nil {
		t.Fatalf("existing socket rejected: %v", err)
	}
}
