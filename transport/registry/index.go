package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
)

// Indexes (multi-platform images) go through the same run as images: each
// image of an index is an image of the run (a child), whose destinations
// are the index's repositories without tags, so its blobs share the run's
// blob work with every other image (each unique blob checked, uploaded
// and mounted once per registry) and its manifest waits for them. Then,
// once the blob and manifest work of the run is done, each index
// destination writes its images' manifests by digest, and the index under
// its tags once every manifest is in place.
//
// An index whose tag already names it, or whose repository holds it by
// digest, needs nothing more: a registry stores an index only once every
// manifest it names is in the repository (distribution checks), and a
// manifest only once its blobs are. A re-push of an unchanged index makes
// one HEAD per tag and writes nothing.

// indexState is the run's indexes.
type indexState struct {
	indexes []*index
	// children are the images of indexes, by manifest digest: two indexes
	// sharing an image share its child.
	children map[digest.Digest]*image
}

// index is one index of the run.
type index struct {
	source   string
	built    *transport.BuiltIndex
	children []*image // in the index's order
	dests    []*indexDest
	report   ImageReport
}

// indexDest is an index's tags in one repository, and its images' there.
type indexDest struct {
	idx      *index
	repo     *repo
	tags     []reference.NamedTagged
	children []*imageDest // in the index's order
	current  []digest.Digest
	present  bool
	err      error
	// signed are the tags signed by the run's key (WithSigner).
	signed map[string]bool
}

// planIndex adds the index in to the run: its images as children, and its
// destinations.
func (r *run) planIndex(in Image, tagOwner map[string]string) error {
	if r.ix.children == nil {
		r.ix.children = map[digest.Digest]*image{}
	}
	bi := in.Index
	x := &index{source: in.Source, built: bi}
	if len(in.Destinations) == 0 {
		return fmt.Errorf("index %s: no destinations", in.Source)
	}
	byRepo := map[string]*indexDest{}
	err := r.destinations("index", in, tagOwner, func(rp *repo, tagged reference.NamedTagged) {
		xd := byRepo[rp.named.Name()]
		if xd == nil {
			xd = &indexDest{idx: x, repo: rp}
			byRepo[rp.named.Name()] = xd
			x.dests = append(x.dests, xd)
		}
		xd.tags = append(xd.tags, tagged)
	})
	if err != nil {
		return err
	}
	for i, built := range bi.Images {
		img := r.ix.children[built.ManifestDigest]
		if img == nil {
			src := fmt.Sprintf("%s manifests[%d] (%s)", in.Source, i, bi.Platform(i))
			img = &image{source: src, built: built, labels: map[digest.Digest]string{}, child: true}
			for _, b := range built.Blobs() {
				img.blobs = append(img.blobs, types.BlobInfo{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
				img.labels[b.Digest] = built.Name(b) + " of " + src
			}
			r.ix.children[built.ManifestDigest] = img
			r.images = append(r.images, img)
		}
		x.children = append(x.children, img)
		for _, xd := range x.dests {
			i := slices.IndexFunc(img.dests, func(id *imageDest) bool { return id.repo == xd.repo })
			if i < 0 {
				img.dests = append(img.dests, &imageDest{img: img, repo: xd.repo})
				i = len(img.dests) - 1
			}
			xd.children = append(xd.children, img.dests[i])
		}
	}
	for _, img := range x.children {
		mountFrom, err := mountRepos(in.MountFrom, img.dests)
		if err != nil {
			return fmt.Errorf("index %s: %w", in.Source, err)
		}
		if img.mountFrom == nil {
			img.mountFrom = map[string][]reference.Named{}
		}
		for host, repos := range mountFrom {
			img.mountFrom[host] = appendRepos(img.mountFrom[host], repos...)
		}
	}
	r.ix.indexes = append(r.ix.indexes, x)
	return nil
}

// probeIndexes asks each index destination which manifest its tags name,
// and, when none names the index, whether the repository holds it by
// digest. Where it does, its images' destinations there are present too,
// and are not probed (execute) nor given any blob work (layout).
func (r *run) probeIndexes(ctx context.Context) {
	var wg sync.WaitGroup
	for _, x := range r.ix.indexes {
		for _, xd := range x.dests {
			wg.Go(func() { r.probeIndex(ctx, xd) })
		}
	}
	wg.Wait()
	for _, x := range r.ix.indexes {
		for _, xd := range x.dests {
			if xd.present {
				for _, cd := range xd.children {
					cd.present = true
				}
			}
		}
	}
}

func (r *run) probeIndex(ctx context.Context, xd *indexDest) {
	xd.current, xd.present, xd.err = r.probeTags(ctx, xd.repo, xd.tags, xd.idx.built.Digest)
}

// pushIndexes writes, for each index destination, its images' manifests
// by digest and then the index under each tag that does not name it yet,
// once the run's images are done (execute).
func (r *run) pushIndexes(ctx context.Context) {
	var wg sync.WaitGroup
	for _, x := range r.ix.indexes {
		for _, xd := range x.dests {
			if xd.err == nil {
				wg.Go(func() { xd.err = r.pushIndex(ctx, xd) })
			}
		}
	}
	wg.Wait()
}

func (r *run) pushIndex(ctx context.Context, xd *indexDest) error {
	x := xd.idx
	if !xd.present {
		// An image that failed is named, rather than one merely stopped
		// by its failure (causes).
		var errs []error
		for i, cd := range xd.children {
			if cd.err != nil {
				errs = append(errs, fmt.Errorf("manifests[%d] (%s, %s): %w", i, x.built.Platform(i), cd.img.built.ManifestDigest, cd.err))
			}
		}
		for i, cd := range xd.children {
			if len(errs) > 0 {
				break
			}
			if err := r.writeChild(ctx, cd); err != nil {
				errs = append(errs, fmt.Errorf("manifests[%d] (%s, %s): %w", i, x.built.Platform(i), cd.img.built.ManifestDigest, err))
			}
		}
		if len(errs) > 0 {
			err := fmt.Errorf("no index written: %w", errors.Join(causes(errs)...))
			r.fail(err)
			return err
		}
	}
	if err := r.writeTags(ctx, xd.repo, xd.tags, xd.current, "index", x.source, x.built.Digest, x.built.Manifest, fmt.Sprintf(" (index of %d)", len(x.children))); err != nil {
		return err
	}
	if r.o.signer != nil {
		src := transport.NewReferenceFromBuiltIndex(x.source, x.built)
		for _, tagged := range xd.tags {
			if err := r.signAs(ctx, src, x.built.Digest, tagged); err != nil {
				return err
			}
			if xd.signed == nil {
				xd.signed = map[string]bool{}
			}
			xd.signed[tagged.String()] = true
		}
	}
	return nil
}

// writeChild writes the manifest of cd's image by digest in cd's
// repository, unless it is there, once for all the indexes that need it,
// then its referrers (its SBOM), which must not name a manifest that is
// not there. Its blobs are in place: pushManifest waited for them, or
// failed.
func (r *run) writeChild(ctx context.Context, cd *imageDest) error {
	if cd.present {
		return nil
	}
	return cd.written.do(func() error {
		man, d := cd.img.built.Manifest, cd.img.built.ManifestDigest
		err := r.do(ctx, "writing the manifest of "+cd.img.source+" in "+cd.repo.named.Name(), func(ctx context.Context) error {
			return r.withDest(ctx, cd.repo, func(dest types.ImageDestination) error {
				return dest.PutManifest(ctx, man, &d)
			})
		})
		if err != nil {
			return err
		}
		r.tally.count(ManifestWritten, 0)
		r.progress.Note("pushed %s@%s", cd.repo.named.Name(), d)
		return r.pushReferrers(ctx, cd)
	})
}

// reportIndexes adds each index to rep: its digest, destinations and the
// manifest digest of each platform. first is the run's first failure so
// far; the result is that, or the first index failure.
func (r *run) reportIndexes(ctx context.Context, rep *Report, first error) error {
	for _, x := range r.ix.indexes {
		ir := ImageReport{Source: x.source, Digest: x.built.Digest, Status: StatusPushed}
		for i, img := range x.children {
			ir.Platforms = append(ir.Platforms, PlatformReport{
				Platform: x.built.Platform(i).String(), Digest: img.built.ManifestDigest, Image: x.built.Index.Manifests[i].Image,
			})
		}
		for _, xd := range x.dests {
			if xd.err != nil && ir.add(ctx, xd.err) && first == nil {
				first = fmt.Errorf("index %s to %s: %w", x.source, xd.repo.named.Name(), xd.err)
			}
			ir.addTags(ctx, xd.err, xd.tags, xd.signed)
		}
		rep.add(ir)
	}
	return first
}
