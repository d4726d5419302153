package transport

import (
	"errors"

	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// Name is the transport's name: references are written nix:PATH.
const Name = "nix"

// Transport is the "nix:" transport. Importing this package registers it,
// so alltransports.ParseImageName understands nix:/nix/store/…-image.json.
var Transport types.ImageTransport = nixTransport{}

type nixTransport struct{}

var _ types.ImageTransport = nixTransport{}

func init() {
	transports.Register(Transport)
}

func (nixTransport) Name() string { return Name }

// ParseReference reads and validates the image description at path.
func (nixTransport) ParseReference(path string) (types.ImageReference, error) {
	return NewReference(path)
}

// ValidatePolicyConfigurationScope rejects every scope: a description is
// named by its file, which gives no namespace to hang a policy on, so only
// the transport-wide default ("") applies.
func (nixTransport) ValidatePolicyConfigurationScope(scope string) error {
	return errors.New(`nix: supports no policy scopes except the default ""`)
}
