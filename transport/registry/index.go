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

	"github.com/nixpush/nixpush/internal/redact"
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
	// written settles the write by digest of a child's manifest in a
	// repository, shared by the indexes that need it there.
	writesMu sync.Mutex
	writes   map[*imageDest]*childWrite
}

type childWrite struct {
	once sync.Once
	err  error
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
	signed []string
}

// planIndex adds the index in to the run: its images as children, and its
// destinations.
func (r *run) planIndex(in Image, tagOwner map[string]string) error {
	if r.ix.children == nil {
		r.ix.children = map[digest.Digest]*image{}
		r.ix.writes = map[*imageDest]*childWrite{}
	}
	bi := in.Index
	x := &index{source: in.Source, built: bi}
	x.report = ImageReport{Source: in.Source, Digest: bi.Digest, Status: StatusPushed}
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
			img.report = ImageReport{Source: src, Digest: built.ManifestDigest, Status: StatusPushed}
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
	want := xd.idx.built.Digest
	xd.current = make([]digest.Digest, len(xd.tags))
	errs := make([]error, len(xd.tags))
	var wg sync.WaitGroup
	for i, t := range xd.tags {
		wg.Go(func() { xd.current[i], errs[i] = r.manifestDigest(ctx, t) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		xd.err = err
		r.fail(err)
		return
	}
	if slices.Contains(xd.current, want) {
		xd.present = true
		return
	}
	canonical, err := reference.WithDigest(xd.repo.named, want)
	if err != nil {
		return
	}
	var d digest.Digest
	if d, xd.err = r.manifestDigest(ctx, canonical); xd.err != nil {
		r.fail(xd.err)
		return
	}
	xd.present = d == want
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
	for i, tagged := range xd.tags {
		if xd.current[i] == x.built.Digest {
			r.tally.count(ManifestUnchanged, 0)
			r.progress.Note("unchanged %s@%s", tagged, x.built.Digest)
			continue
		}
		err := r.retry.Do(ctx, "writing the index "+x.source+" as "+tagged.String(), func(ctx context.Context, touch func()) error {
			if err := r.acquire(ctx); err != nil {
				return err
			}
			defer r.release()
			touch()
			return r.putManifest(ctx, xd.repo, tagged, x.built.Manifest)
		})
		if err != nil {
			err = fmt.Errorf("index %s as %s: %w", x.built.Digest, tagged, err)
			r.fail(err)
			return err
		}
		r.tally.count(ManifestWritten, 0)
		r.progress.Note("pushed %s@%s (index of %d)", tagged, x.built.Digest, len(x.children))
	}
	if r.o.signer != nil {
		src := transport.NewReferenceFromBuiltIndex(x.source, x.built)
		for _, tagged := range xd.tags {
			if err := r.signAs(ctx, src, x.built.Digest, tagged); err != nil {
				return err
			}
			xd.signed = append(xd.signed, tagged.String())
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
	if cd.err != nil {
		return cd.err
	}
	if cd.present {
		return nil
	}
	r.ix.writesMu.Lock()
	w := r.ix.writes[cd]
	if w == nil {
		w = &childWrite{}
		r.ix.writes[cd] = w
	}
	r.ix.writesMu.Unlock()
	w.once.Do(func() {
		man, d := cd.img.built.Manifest, cd.img.built.ManifestDigest
		w.err = r.retry.Do(ctx, "writing the manifest of "+cd.img.source+" in "+cd.repo.named.Name(), func(ctx context.Context, touch func()) error {
			if err := r.acquire(ctx); err != nil {
				return err
			}
			defer r.release()
			touch()
			return r.withDest(ctx, cd.repo, func(dest types.ImageDestination) error {
				return dest.PutManifest(ctx, man, &d)
			})
		})
		if w.err == nil {
			r.tally.count(ManifestWritten, 0)
			r.progress.Note("pushed %s@%s", cd.repo.named.Name(), d)
			w.err = r.pushReferrers(ctx, cd)
		}
	})
	return w.err
}

// reportIndexes adds each index to rep: its digest, destinations and the
// manifest digest of each platform. first is the run's first failure so
// far; the result is that, or the first index failure.
func (r *run) reportIndexes(ctx context.Context, rep *Report, first error) error {
	for _, x := range r.ix.indexes {
		ir := x.report
		for i, img := range x.children {
			ir.Platforms = append(ir.Platforms, PlatformReport{
				Platform: x.built.Platform(i).String(), Digest: img.built.ManifestDigest, Image: x.built.Index.Manifests[i].Image,
			})
		}
		for _, xd := range x.dests {
			status, msg := StatusPushed, ""
			if xd.err != nil {
				status, msg = StatusFailed, redact.String(xd.err.Error())
				if errors.Is(xd.err, context.Canceled) && ctx.Err() == nil {
					status, msg = StatusCanceled, "stopped after another image failed (see --keep-going)"
				}
				if ir.Status != StatusFailed {
					ir.Status, ir.Error = status, msg
				}
				if status == StatusFailed && first == nil {
					first = fmt.Errorf("index %s to %s: %w", x.source, xd.repo.named.Name(), xd.err)
				}
			}
			for _, t := range xd.tags {
				ir.Destinations = append(ir.Destinations, DestinationReport{Reference: t.String(), Status: status, Error: msg,
					Signed: slices.Contains(xd.signed, t.String())})
			}
		}
		rep.Totals.Images++
		if ir.Status != StatusPushed {
			rep.Totals.Failed++
		}
		rep.Images = append(rep.Images, ir)
	}
	return first
}
