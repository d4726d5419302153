package push

import (
	"context"
	"io"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
)

// checkStored returns dest so that, when src is a nix: image and dest a
// registry, a blob the registry already holds under a digest of src but
// with another size than src gives it fails the copy with a
// *transport.SizeError before any manifest is written. Other pairs are
// returned unchanged.
//
// containers/image skips a blob the registry has (HEAD, or a mount from
// another repository) and, as the digests are preserved, writes the
// manifest with the source's sizes, never comparing them with the size the
// registry reported: a description claiming 8 GiB for a 2 MB layer would
// publish a manifest saying 8 GiB. The registry's size comes back from
// TryReusingBlob (layers) and PutBlob (the config, which PutBlob checks
// with a HEAD before uploading); the wrapper compares it there, where
// copy.Image still stops before the manifest.
func checkStored(src, dest types.ImageReference) (types.ImageReference, error) {
	nix, ok := src.(*transport.Reference)
	if !ok || dest.Transport().Name() != docker.Transport.Name() {
		return dest, nil
	}
	return checkedRef{ImageReference: dest, built: nix.Built()}, nil
}

// checkedRef is a registry reference whose destinations compare the size
// the registry reports for each blob it already holds with the source's.
type checkedRef struct {
	types.ImageReference
	built *transport.Built
}

func (r checkedRef) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	d, err := r.ImageReference.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &checkedDest{ImageDestination: d, ref: r}, nil
}

// checkedDest is a registry destination that refuses a reused blob whose
// size is not the source's.
//
// containers/image reaches it through its public ImageDestination methods
// only (its richer internal ones take internal types). For a nix: source
// this loses nothing: blobs keep their digests (no substitution or
// compression choices), there is no partial upload and no signature.
type checkedDest struct {
	types.ImageDestination
	ref checkedRef
}

var _ types.ImageDestination = (*checkedDest)(nil)

func (d *checkedDest) TryReusingBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache, canSubstitute bool) (bool, types.BlobInfo, error) {
	reused, got, err := d.ImageDestination.TryReusingBlob(ctx, info, cache, canSubstitute)
	if err != nil || !reused {
		return reused, got, err
	}
	if err := d.check(got); err != nil {
		return false, types.BlobInfo{}, err
	}
	return reused, got, nil
}

// PutBlob checks the size of a blob the registry already had (PutBlob
// asks before uploading) or of what was uploaded, which the source
// already checked against its own size.
func (d *checkedDest) PutBlob(ctx context.Context, stream io.Reader, info types.BlobInfo, cache types.BlobInfoCache, isConfig bool) (types.BlobInfo, error) {
	got, err := d.ImageDestination.PutBlob(ctx, stream, info, cache, isConfig)
	if err != nil {
		return got, err
	}
	if err := d.check(got); err != nil {
		return types.BlobInfo{}, err
	}
	return got, nil
}

func (d *checkedDest) check(got types.BlobInfo) error {
	return d.ref.built.CheckStoredSize(got.Digest, got.Size)
}
