package imagecopy

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
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
			transports.ImageName(ref), socket, err)
	}
	return nil
}

// ErrCompression says a destination cannot hold a layer compressed the way
// the image's description has it.
var ErrCompression = errors.New("the destination cannot hold a layer of this compression")

// checkDaemonLayers refuses, before any work, a nix: image with a zstd
// layer bound for the Docker daemon: docker-daemon: takes Docker schema 2
// images, whose layers are uncompressed or gzip, and containers/image
// hands it layers as they are (a Docker archive, by contrast, gets them
// decompressed).
func checkDaemonLayers(src, dest types.ImageReference) error {
	nix, ok := src.(*transport.Reference)
	if !ok || dest.Transport().Name() != "docker-daemon" {
		return nil
	}
	imgs := []*description.Image{nix.Image()}
	if bi := nix.Index(); bi != nil {
		imgs = imgs[:0]
		for _, b := range bi.Images {
			imgs = append(imgs, b.Image)
		}
	}
	for _, img := range imgs {
		for i, l := range img.Layers {
			if l.Compression != nil && l.Compression.Algorithm == layers.Zstd {
				return fmt.Errorf("copying %s to %s: layers[%d] (%s) is zstd-compressed, and the Docker daemon takes only uncompressed or gzip layers: %w; copy to docker-archive: (layers are decompressed there) and docker load it, or build the image with gzip",
					transports.ImageName(src), transports.ImageName(dest), i, l.Digest, ErrCompression)
			}
		}
	}
	return nil
}
