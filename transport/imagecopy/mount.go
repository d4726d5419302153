package imagecopy

import (
	"context"
	"fmt"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"golang.org/x/sync/errgroup"

	"github.com/nixpush/nixpush/transport/registry"
)

// premount makes each blob of src that dest lacks but one of repos has
// available in dest by a cross-repository mount, before the copy proper.
//
// containers/image's docker destination first asks the destination
// repository for a blob (HEAD), then tries the locations its blob-info
// cache remembers, mounting from the first that has it. A fresh machine
// remembers nothing, so here an in-memory cache is told that every blob may
// be in each of repos (registry.MountCandidates); the destination checks
// each candidate (HEAD) before mounting (POST ?mount=&from=), so a wrong
// guess costs one request.
func (c *copier) premount(ctx context.Context, src types.ImageReference, srcSys *types.SystemContext, dest types.ImageReference, repos []string) error {
	if !isRegistry(dest) {
		return fmt.Errorf("mount-from: only docker:// destinations mount blobs, not %s", transports.ImageName(dest))
	}
	domain := reference.Domain(dest.DockerReference())
	img, err := src.NewImage(ctx, srcSys)
	if err != nil {
		return fmt.Errorf("mount-from: reading %s: %w", transports.ImageName(src), err)
	}
	defer img.Close()
	blobs := append(img.LayerInfos(), img.ConfigInfo())

	var candidates []reference.Named
	for _, r := range repos {
		repo, err := registry.MountRepo(domain, r)
		if err != nil {
			return err
		}
		candidates = append(candidates, repo)
	}
	cache, err := registry.MountCandidates(candidates, blobs)
	if err != nil {
		return fmt.Errorf("mount-from: %w", err)
	}
	d, err := dest.NewImageDestination(ctx, c.destSys)
	if err != nil {
		return fmt.Errorf("mount-from: %s: %w", transports.ImageName(dest), err)
	}
	defer d.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.Parallel())
	for _, b := range blobs {
		g.Go(func() error {
			if _, _, err := d.TryReusingBlob(gctx, b, cache, false); err != nil {
				return fmt.Errorf("mount-from: blob %s: %w", b.Digest, err)
			}
			return nil
		})
	}
	return g.Wait()
}
