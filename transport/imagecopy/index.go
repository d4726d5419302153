package imagecopy

import (
	"fmt"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
)

// Multi-architecture selections (WithMultiArch), as skopeo's --multi-arch
// names them.
const (
	// MultiArchSystem copies only the image for the platform of the
	// machine, or of WithPlatform.
	MultiArchSystem = "system"
	// MultiArchAll copies the index and every image of it.
	MultiArchAll = "all"
	// MultiArchIndexOnly copies the index alone, not its images.
	MultiArchIndexOnly = "index-only"
)

// WithMultiArch chooses what is copied of a source that is an index (a
// manifest list): MultiArchSystem, MultiArchAll or MultiArchIndexOnly.
// Without it, a nix: index is copied whole (MultiArchAll: it was built to
// be pushed as one) except to docker-archive: and docker-daemon:, which
// hold single images; any other source as skopeo does (MultiArchSystem).
func WithMultiArch(sel string) Option {
	return func(o *options) error {
		switch sel {
		case MultiArchSystem, MultiArchAll, MultiArchIndexOnly:
			o.multiArch = sel
			return nil
		}
		return fmt.Errorf("multi-arch %q: want %q, %q or %q", sel, MultiArchSystem, MultiArchAll, MultiArchIndexOnly)
	}
}

// WithPlatform chooses the image of an index by this platform instead of
// the machine's (skopeo's --override-os, --override-arch and
// --override-variant); empty parts are the machine's.
func WithPlatform(os, arch, variant string) Option {
	return func(o *options) error {
		o.platform = &types.SystemContext{OSChoice: os, ArchitectureChoice: arch, VariantChoice: variant}
		return nil
	}
}

// multiArchFor is the selection for a copy of src to dest: WithMultiArch's,
// else all of a nix: index (but the image of the system for a Docker
// archive or daemon, which hold no lists), else the image of the system.
func (o *options) multiArchFor(src, dest types.ImageReference) string {
	if o.multiArch != "" {
		return o.multiArch
	}
	if nix, ok := src.(*transport.Reference); ok && nix.Index() != nil {
		if dockerOnly(dest) {
			return MultiArchSystem
		}
		return MultiArchAll
	}
	return MultiArchSystem
}

// listSelection is containers/image's name for sel. index-only is
// CopySpecificImages with no instances, as in skopeo.
func listSelection(sel string) copy.ImageListSelection {
	switch sel {
	case MultiArchAll:
		return copy.CopyAllImages
	case MultiArchIndexOnly:
		return copy.CopySpecificImages
	}
	return copy.CopySystemImage
}

// applyPlatform sets sys's platform choice from WithPlatform.
func (o *options) applyPlatform(sys *types.SystemContext) {
	if o.platform == nil {
		return
	}
	sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice = o.platform.OSChoice, o.platform.ArchitectureChoice, o.platform.VariantChoice
}

// chooseImage returns the image of the nix: index bi for the platform sys
// chooses (the machine's unless overridden), as containers/image chooses
// an instance of a list.
func chooseImage(bi *transport.BuiltIndex, sys *types.SystemContext) (*transport.Built, error) {
	list, err := manifest.OCI1IndexFromManifest(bi.Manifest)
	if err != nil {
		return nil, err
	}
	d, err := list.ChooseInstance(sys)
	if err != nil {
		return nil, fmt.Errorf("choosing the image of index %s: %w", bi.Digest, err)
	}
	return bi.Image(d), nil
}
