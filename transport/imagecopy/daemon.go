package imagecopy

import (
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/types"
)

// defaultDaemonSocket is where containers/image's docker-daemon: transport
// looks for the Docker daemon when no host is set.
const defaultDaemonSocket = "/var/run/docker.sock"

// checkDaemonSocket fails early, naming the socket, when ref is a
// docker-daemon: image and the daemon's unix socket does not exist:
// containers/image would otherwise report only a closed pipe.
func checkDaemonSocket(ref types.ImageReference, sys *types.SystemContext) error {
	if ref.Transport().Name() != "docker-daemon" {
		return nil
	}
	socket := defaultDaemonSocket
	if sys.DockerDaemonHost != "" {
		path, ok := strings.CutPrefix(sys.DockerDaemonHost, "unix://")
		if !ok {
			return nil // tcp:// and others: the connection error names them
		}
		socket = path
	}
	if _, err := os.Stat(socket); err != nil {
		return fmt.Errorf("%s: no Docker daemon at unix://%s (%w); set --src-daemon-host/--dest-daemon-host or DOCKER_HOST",
			transports(ref), socket, err)
	}
	return nil
}
