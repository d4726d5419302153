package imagecopy

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
)

// Result describes a finished copy.
type Result struct {
	// Manifest is the manifest written to the destination.
	Manifest []byte
	// Digest is the manifest's digest: what the destination now serves for
	// its tag, and what to sign.
	Digest digest.Digest
	// Report is what the copy did, as registry.Push reports a push: the
	// destinations, and the blobs uploaded, mounted and skipped.
	Report *registry.Report
}

// ParseReference parses a containers/image reference such as
// "nix:/nix/store/…-image.json", "docker://registry/repo:tag" or
// "oci:dir:tag".
func ParseReference(s string) (types.ImageReference, error) {
	ref, err := alltransports.ParseImageName(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}

// Copy copies the image src to dest; both are references as
// ParseReference reads them.
func Copy(ctx context.Context, src, dest string, opts ...Option) (*Result, error) {
	srcRef, err := ParseReference(src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	destRef, err := ParseReference(dest)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return CopyImage(ctx, srcRef, destRef, opts...)
}

// CopyImage copies the image src to dest.
//
// A nix: image going to a registry is pushed by registry.Push: one image,
// whose destinations are dest and its additional tags, with the
// repositories of WithMountFrom to mount from. Other copies go through
// containers/image's copy.Image, retried whole under the registry options'
// retry policy. From nix:, layers and manifest are kept exactly as
// described (containers/image's PreserveDigests), except for destinations
// that only take Docker manifests (docker-archive:, docker-daemon:), where
// the manifest is converted: a Docker archive holds uncompressed layers
// (containers/image decompresses compressed ones; the config, whose diff
// IDs are the uncompressed tars', is unchanged), the Docker daemon gets
// layers unchanged and so cannot take zstd ones (ErrCompression).
func CopyImage(ctx context.Context, src, dest types.ImageReference, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	destCfg, err := registry.NewConfig(o.registry...)
	if err != nil {
		return nil, err
	}
	srcCfg, err := registry.NewConfig(o.source...)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if err := checkAdditionalTags(dest, o.additionalTags); err != nil {
		return nil, err
	}
	if len(destCfg.Signers()) > 0 && dest.DockerReference() == nil {
		// Checked before any work: containers/image would find it out
		// only after copying every blob.
		return nil, fmt.Errorf("signing the copy to %s: %w", transports.ImageName(dest), ErrSignIdentity)
	}
	policy, err := policyContext(o.policyFile)
	if err != nil {
		return nil, err
	}
	defer policy.Destroy() //nolint:errcheck // only frees memory

	if nix, ok := src.(*transport.Reference); ok && isRegistry(dest) && (nix.Index() == nil || o.multiArchFor(nix, dest) != MultiArchIndexOnly) {
		return o.push(ctx, policy, nix, dest)
	}
	srcSys, err := sideContext(srcCfg, src, o.srcDaemonHost)
	if err != nil {
		return nil, err
	}
	o.applyPlatform(srcSys)
	destSys, err := sideContext(destCfg, dest, o.destDaemonHost)
	if err != nil {
		return nil, err
	}
	if err := checkDaemonLayers(src, dest); err != nil {
		return nil, err
	}
	for _, end := range []struct {
		ref types.ImageReference
		sys *types.SystemContext
	}{{src, srcSys}, {dest, destSys}} {
		if err := checkDaemonSocket(end.ref, end.sys); err != nil {
			return nil, err
		}
	}
	if err := addArchiveTags(destSys, dest, o.additionalTags); err != nil {
		return nil, err
	}
	c := &copier{o: o, cfg: destCfg, policy: policy, src: src, srcSys: srcSys, destSys: destSys}
	c.progress = destCfg.NewProgress(1)
	res, err := c.copyAll(ctx, dest)
	c.progress.Close()
	if err != nil {
		return nil, err
	}
	res.Report = c.progress.Report(registry.ImageReport{
		Source: transports.ImageName(src), Digest: res.Digest, Status: registry.StatusPushed,
		Destinations: c.pushed,
	})
	return res, nil
}

// push hands a nix: image bound for a registry to registry.Push, after
// checking it against the signature policy as copy.Image would.
func (o *options) push(ctx context.Context, policy *signature.PolicyContext, nix *transport.Reference, dest types.ImageReference) (*Result, error) {
	if err := allowed(ctx, policy, nix); err != nil {
		return nil, err
	}
	named := dest.DockerReference()
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("copying %s to %s: a nix: image is pushed to a tag, not to a digest", transports.ImageName(nix), transports.ImageName(dest))
	}
	dests := []string{tagged.String()}
	for _, t := range o.additionalTags {
		d, err := additionalRef(named, t)
		if err != nil {
			return nil, err
		}
		dests = append(dests, d.String())
	}
	in := registry.Image{Source: nix.StringWithinTransport(), Destinations: dests, MountFrom: o.mountFrom, Built: nix.Built()}
	if bi := nix.Index(); bi != nil {
		// The whole index, or the image of one platform, as copy.Image
		// would choose it.
		if o.multiArchFor(nix, dest) == MultiArchAll {
			in.Index = bi
		} else {
			sys := &types.SystemContext{}
			o.applyPlatform(sys)
			b, err := chooseImage(bi, sys)
			if err != nil {
				return nil, fmt.Errorf("copying %s to %s: %w", transports.ImageName(nix), transports.ImageName(dest), err)
			}
			in.Built = b
		}
	}
	rep, err := registry.Push(ctx, []registry.Image{in}, o.registry...)
	if err != nil {
		// One image: its failure says it all.
		var ie *registry.IncompleteError
		if errors.As(err, &ie) && ie.Images == 1 {
			err = ie.First
		}
		return &Result{Report: rep}, fmt.Errorf("copying %s to %s: %w", transports.ImageName(nix), transports.ImageName(dest), err)
	}
	if in.Index != nil {
		return &Result{Manifest: in.Index.Manifest, Digest: in.Index.Digest, Report: rep}, nil
	}
	return &Result{Manifest: in.Built.Manifest, Digest: in.Built.ManifestDigest, Report: rep}, nil
}

// allowed checks src against the signature policy.
func allowed(ctx context.Context, policy *signature.PolicyContext, src types.ImageReference) error {
	s, err := src.NewImageSource(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if ok, err := policy.IsRunningImageAllowed(ctx, image.UnparsedInstance(s, nil)); !ok {
		return fmt.Errorf("%s: rejected by the signature policy: %w", transports.ImageName(src), err)
	}
	return nil
}

// copier is one copy.Image copy, to dest and its additional tags.
type copier struct {
	o               *options
	cfg             *registry.Config
	policy          *signature.PolicyContext
	src             types.ImageReference
	srcSys, destSys *types.SystemContext
	progress        *registry.Progress
	pushed          []registry.DestinationReport
}

// copyAll copies to dest (after mounting from WithMountFrom's
// repositories), then each additional tag of a registry destination from
// dest, as it now is there: blobs keep the digests dest gave them (for
// another repository, mounted from dest's), and the manifest is the same.
func (c *copier) copyAll(ctx context.Context, dest types.ImageReference) (*Result, error) {
	if len(c.o.mountFrom) > 0 {
		if err := c.premount(ctx, c.src, c.srcSys, dest, c.o.mountFrom); err != nil {
			return nil, err
		}
	}
	res, err := c.copyWithRetry(ctx, c.src, c.srcSys, dest)
	if err != nil {
		return nil, err
	}
	if !isRegistry(dest) {
		return res, nil
	}
	named := dest.DockerReference()
	for _, t := range c.o.additionalTags {
		tagged, err := additionalRef(named, t)
		if err != nil {
			return nil, err
		}
		other, err := docker.NewReference(tagged)
		if err != nil {
			return nil, fmt.Errorf("additional tag %q: %w", t, err)
		}
		if reference.TrimNamed(tagged).Name() != reference.TrimNamed(named).Name() {
			if err := c.premount(ctx, dest, c.destSys, other, []string{reference.TrimNamed(named).Name()}); err != nil {
				return nil, fmt.Errorf("additional tag %q: %w", t, err)
			}
		}
		r, err := c.copyWithRetry(ctx, dest, c.destSys, other)
		if err != nil {
			return nil, fmt.Errorf("additional tag %q: %w", t, err)
		}
		if r.Digest != res.Digest {
			return nil, fmt.Errorf("additional tag %q: got manifest %s, want %s", t, r.Digest, res.Digest)
		}
	}
	return res, nil
}

// copyWithRetry runs copy.Image, retried whole under the retry policy.
// Without progress reports from inside it, the policy's timeout does not
// apply.
func (c *copier) copyWithRetry(ctx context.Context, src types.ImageReference, srcSys *types.SystemContext, dest types.ImageReference) (*Result, error) {
	var res *Result
	err := c.cfg.Retrier(c.progress.Note).Do(ctx, "copying "+transports.ImageName(src)+" to "+transports.ImageName(dest), func(ctx context.Context, _ func()) error {
		var err error
		res, err = c.copyOnce(ctx, src, srcSys, dest)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.pushed = append(c.pushed, registry.DestinationReport{Reference: transports.ImageName(dest), Status: registry.StatusPushed})
	return res, nil
}

func (c *copier) copyOnce(ctx context.Context, src types.ImageReference, srcSys *types.SystemContext, dest types.ImageReference) (*Result, error) {
	policy := c.policy
	if src != c.src {
		// The image the policy admitted, as it now is at the first
		// destination.
		accept, err := policyContext("")
		if err != nil {
			return nil, err
		}
		defer accept.Destroy() //nolint:errcheck // only frees memory
		policy = accept
	}
	events := c.events()
	copts := &copy.Options{
		SourceCtx:            srcSys,
		DestinationCtx:       c.destSys,
		MaxParallelDownloads: uint(c.cfg.Parallel()),
		// From the first destination on to an additional tag, nothing
		// changes.
		PreserveDigests:    preserveDigests(src, dest) || src != c.src,
		Progress:           events.ch,
		ProgressInterval:   progressInterval,
		ImageListSelection: listSelection(c.o.multiArchFor(c.src, dest)),
		// registry.WithSigner: signed as skopeo signs, with the
		// destination as the signature's identity; a destination that
		// cannot store signatures (oci:) fails the copy.
		Signers: c.cfg.Signers(),
	}
	man, err := copy.Image(ctx, policy, dest, src, copts)
	events.close()
	if err != nil {
		return nil, fmt.Errorf("copying %s to %s: %w", transports.ImageName(src), transports.ImageName(dest), err)
	}
	d, err := manifest.Digest(man)
	if err != nil {
		return nil, fmt.Errorf("digest of the manifest written to %s: %w", transports.ImageName(dest), err)
	}
	return &Result{Manifest: man, Digest: d}, nil
}

// dockerOnly says whether dest keeps one Docker image (docker-archive:,
// docker-daemon:): no index, no OCI media types.
func dockerOnly(dest types.ImageReference) bool {
	switch dest.Transport().Name() {
	case "docker-archive", "docker-daemon":
		return true
	}
	return false
}

// preserveDigests says whether to forbid containers/image from changing
// layers or the manifest. It is set for nix: sources, whose digests were
// computed at build time; destinations that only store Docker manifests
// need a manifest conversion, and a Docker archive takes its layers
// uncompressed.
func preserveDigests(src, dest types.ImageReference) bool {
	return src.Transport().Name() == transport.Name && !dockerOnly(dest)
}

// policyContext reads the signature policy, or accepts everything.
func policyContext(path string) (*signature.PolicyContext, error) {
	var policy *signature.Policy
	if path == "" {
		policy = &signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}}
	} else {
		p, err := signature.NewPolicyFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("signature policy %s: %w", path, err)
		}
		policy = p
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("signature policy: %w", err)
	}
	return pc, nil
}

// sideContext returns the containers/image settings of one end of a copy:
// its registry's (as registry.Config checks them), and the same TLS and
// certificate settings for the other transports that have them.
func sideContext(cfg *registry.Config, ref types.ImageReference, daemonHost string) (*types.SystemContext, error) {
	var named reference.Named
	if isRegistry(ref) {
		named = ref.DockerReference()
	}
	sys, err := cfg.SystemContext(named)
	if err != nil {
		return nil, err
	}
	insecure := sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue
	sys.OCICertPath, sys.OCIInsecureSkipTLSVerify = sys.DockerCertPath, insecure
	sys.DockerDaemonHost, sys.DockerDaemonCertPath, sys.DockerDaemonInsecureSkipTLSVerify = daemonHost, sys.DockerCertPath, insecure
	return sys, nil
}

// isRegistry says whether ref is a docker:// reference.
func isRegistry(ref types.ImageReference) bool {
	return ref.Transport().Name() == docker.Transport.Name() && ref.DockerReference() != nil
}

// ErrSignIdentity says a signed copy goes to a destination that names no
// registry reference (oci:, dir:, archives), which a sigstore signature
// needs as its identity.
var ErrSignIdentity = errors.New("the destination names no registry reference for the signature's identity; sign copies to docker:// destinations")

// errNoTags says a destination takes no additional tags.
var errNoTags = errors.New("only docker:// and docker-archive: destinations take additional tags")
