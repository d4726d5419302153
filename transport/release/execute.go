package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/push"
)

// execute runs every blob and every manifest as its own goroutine; each
// registry operation takes a slot of the run's pool, so the pool bounds
// the work of the whole run. A manifest goroutine waits, holding no slot,
// until each of its blobs is in place in its repository.
func (r *run) execute(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range r.blobSeq {
		wg.Go(func() { r.pushBlob(ctx, b) })
	}
	for _, img := range r.images {
		for _, id := range img.dests {
			wg.Go(func() { id.err = r.pushManifest(ctx, id) })
		}
	}
	wg.Wait()
	for _, rp := range r.order {
		if rp.dest != nil {
			rp.dest.Close()
		}
	}
}

// fail records err, and stops the run unless it keeps going.
func (r *run) fail(err error) {
	if err != nil && !r.o.keepGoing {
		r.cancel()
	}
}

// repoDest returns the docker destination used for the blobs of rp,
// opened once.
func (r *run) repoDest(ctx context.Context, rp *repo) (types.ImageDestination, error) {
	select {
	case <-rp.ready:
	default:
		r.openMu.Lock()
		select {
		case <-rp.ready:
		default:
			rp.dest, rp.destErr = r.destination(ctx, rp.any)
			close(rp.ready)
		}
		r.openMu.Unlock()
	}
	return rp.dest, rp.destErr
}

// pushBlob puts b in place in each repository that needs it: checked and,
// if missing, uploaded in its home repository; then checked in each other
// repository and mounted from the home, or uploaded when the registry
// refuses the mount.
//
// When a repository fails, the next one that needs the blob becomes the
// home, so that with --keep-going one broken repository does not fail the
// others; an error of the blob itself (a layer that no longer matches its
// description) fails them all at once.
func (r *run) pushBlob(ctx context.Context, b *blob) {
	var home *repo
	var homeNew bool // the blob was new to its home
	var fatal error
	for _, rp := range b.repos {
		err, placed := fatal, false
		if err == nil {
			placed, err = r.ensure(ctx, b, rp, home, homeNew)
		}
		r.futures[futureKey{b.info.Digest, rp.named.Name()}].placed = placed
		if err == nil && home == nil {
			home, homeNew = rp, placed
		}
		var le *transport.LayerError
		if errors.As(err, &le) || errors.Is(err, ErrDigestMismatch) || ctx.Err() != nil {
			fatal = err
		}
		r.settle(b, rp, err)
	}
}

func (r *run) settle(b *blob, rp *repo, err error) {
	f := r.futures[futureKey{b.info.Digest, rp.named.Name()}]
	if err != nil {
		f.err = fmt.Errorf("%s (%s) in %s: %w", b.label, b.info.Digest, rp.named.Name(), err)
	}
	// Done before the run is stopped, so that the images waiting on it
	// report this error rather than the cancellation.
	close(f.done)
	r.fail(f.err)
}

// ensure makes b present in rp: skipped if it is there, mounted from
// home when given, else uploaded. placed says it was not there before.
//
// When the blob was new to its home, it is most likely new to rp too: the
// mount is tried at once, without a separate check of rp, which
// containers/image makes anyway before mounting (one HEAD saved per
// repository). Should rp have had it all along, no mount is made, but it
// is counted as mounted.
func (r *run) ensure(ctx context.Context, b *blob, rp *repo, home *repo, homeNew bool) (placed bool, err error) {
	d, err := r.repoDest(ctx, rp)
	if err != nil {
		return false, err
	}
	if home == nil || !homeNew {
		have, err := r.reuse(ctx, d, b, rp, nil)
		if err != nil {
			return false, err
		}
		if have {
			r.tally.count(skipped, b.info.Size)
			return false, nil
		}
	}
	if home != nil {
		// containers/image mounts from the locations a blob-info cache
		// names: this one names only the home. TryReusingBlob asks rp
		// (HEAD), then home (HEAD), then mounts with from=home; a
		// refused mount (202) is cancelled and reported as false.
		cache, err := push.MountCandidates([]reference.Named{home.named}, []types.BlobInfo{b.info})
		if err != nil {
			return false, err
		}
		mountedOK, err := r.reuse(ctx, d, b, rp, cache)
		if err != nil {
			return false, err
		}
		if mountedOK {
			r.tally.count(mounted, b.info.Size)
			return true, nil
		}
		r.progress.note("%s: %s refused to mount it from %s; uploading", b.label, rp.named.Name(), home.named.Name())
	}
	if err := r.upload(ctx, d, b, rp); err != nil {
		return false, err
	}
	r.tally.count(uploaded, b.info.Size)
	return true, nil
}

// reuse asks d's repository for b (and, with cache, mounts it from the
// locations cache names), retrying transient failures.
func (r *run) reuse(ctx context.Context, d types.ImageDestination, b *blob, rp *repo, cache types.BlobInfoCache) (bool, error) {
	if cache == nil {
		// A fresh, empty cache: only rp itself is asked.
		cache = memory.New()
	}
	var have bool
	err := r.retry.do(ctx, "checking "+b.label+" in "+rp.named.Name(), func(ctx context.Context, touch func()) error {
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		ok, _, err := d.TryReusingBlob(ctx, b.info, cache, false)
		have = ok
		return err
	})
	return have, err
}

// upload streams b from the store into rp, from scratch on each try: the
// bytes are deterministic.
func (r *run) upload(ctx context.Context, d types.ImageDestination, b *blob, rp *repo) error {
	return r.retry.do(ctx, "uploading "+b.label+" to "+rp.named.Name(), func(ctx context.Context, touch func()) error {
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		src, err := r.sources.get(ctx, b.src)
		if err != nil {
			return err
		}
		rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: b.info.Digest, Size: b.info.Size}, nil)
		if err != nil {
			return err
		}
		defer rc.Close()
		// Every read tells the stall timer the upload is moving.
		stream := r.progress.track(b.label, b.info.Size, touchReader{rc, touch})
		defer r.progress.untrack(stream)
		// The digest is left out: given one, PutBlob asks the registry for
		// the blob again (HEAD) before uploading; without one it hashes
		// the stream itself, a second sha256 pass next to the stream's own
		// check (which fails the upload on a mismatch before the registry
		// commits the blob). One HEAD per upload would be cheaper than that
		// pass (~1.5 s of CPU per GiB on the 2-core test machine): the
		// first speed-up to try (docs/benchmarks.md); request counts are
		// pinned by TestReleaseSharedLayers.
		info := types.BlobInfo{Size: b.info.Size, MediaType: b.info.MediaType}
		got, err := d.PutBlob(ctx, stream, info, memory.New(), b.isConfig)
		if err != nil {
			return err
		}
		if got.Digest != b.info.Digest {
			return fmt.Errorf("%w: the registry stored it as %s", ErrDigestMismatch, got.Digest)
		}
		return nil
	})
}

// pushManifest writes id's manifest under each of its tags once every
// blob of the image is in place in the repository.
func (r *run) pushManifest(ctx context.Context, id *imageDest) error {
	var errs []error
	for _, bi := range id.img.blobs {
		f := r.futures[futureKey{bi.Digest, id.repo.named.Name()}]
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	for _, bi := range id.img.blobs {
		f := r.futures[futureKey{bi.Digest, id.repo.named.Name()}]
		select {
		case <-f.done:
			if f.err != nil {
				errs = append(errs, f.err)
			}
		default:
		}
	}
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	if len(errs) > 0 {
		return fmt.Errorf("no manifest written: %w", errors.Join(causes(errs)...))
	}
	fresh := false
	for _, bi := range id.img.blobs {
		fresh = fresh || r.futures[futureKey{bi.Digest, id.repo.named.Name()}].placed
	}
	for _, tagged := range id.tags {
		var unchanged bool
		err := r.retry.do(ctx, "writing the manifest of "+id.img.source+" as "+tagged.String(), func(ctx context.Context, touch func()) error {
			if err := r.acquire(ctx); err != nil {
				return err
			}
			defer r.release()
			touch()
			// A tag that already names this manifest is left alone (one
			// HEAD): a re-run writes nothing. Any error here (404 for a new
			// tag) just means the manifest is written. When a blob of the
			// image was new to the repository, the manifest cannot be there
			// yet, and nothing is asked.
			if ref, err := docker.NewReference(tagged); err == nil && !fresh {
				if cur, err := docker.GetDigest(ctx, r.sys, ref); err == nil && cur == id.img.built.ManifestDigest {
					unchanged = true
					return nil
				}
			}
			d, err := r.destination(ctx, tagged)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := d.PutManifest(ctx, id.img.built.Manifest, nil); err != nil {
				return err
			}
			// A docker destination's Commit does nothing; it is called as
			// the ImageDestination contract asks.
			return d.Commit(ctx, nil)
		})
		if err != nil {
			err = fmt.Errorf("manifest %s as %s: %w", id.img.built.ManifestDigest, tagged, err)
			r.fail(err)
			return err
		}
		if unchanged {
			r.tally.count(manifestUnchanged, 0)
			r.progress.note("unchanged %s@%s", tagged, id.img.built.ManifestDigest)
			continue
		}
		r.tally.count(manifest, 0)
		r.progress.note("pushed %s@%s", tagged, id.img.built.ManifestDigest)
	}
	return nil
}

// causes drops the errors that only say the run was stopped when errs also
// holds a failure that stopped it: a blob cut short because another blob
// failed must not hide that failure (report would take the image for one
// merely stopped by another).
func causes(errs []error) []error {
	var real []error
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) {
			real = append(real, err)
		}
	}
	if len(real) == 0 {
		return errs
	}
	return real
}

// sources holds one open nix: source per image, for the blobs read from it.
type sources struct {
	mu   sync.Mutex
	open map[*image]types.ImageSource
}

func (s *sources) get(ctx context.Context, img *image) (types.ImageSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src, ok := s.open[img]; ok {
		return src, nil
	}
	src, err := img.ref.NewImageSource(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.source, err)
	}
	if s.open == nil {
		s.open = map[*image]types.ImageSource{}
	}
	s.open[img] = src
	return src, nil
}

func (s *sources) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.open {
		src.Close()
	}
}

var _ io.Reader = (*tracked)(nil)

// touchReader calls touch on every read.
type touchReader struct {
	r     io.Reader
	touch func()
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.touch()
	return n, err
}
