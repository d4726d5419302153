package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport/meter"
	"github.com/opencontainers/go-digest"
)

// execute first asks each destination for the image's manifest (probe),
// then lays out the blobs of the destinations that lack it (layout), and
// runs every blob and every manifest as its own goroutine; each registry
// operation takes a slot of the run's pool, so the pool bounds the work
// of the whole run. A manifest goroutine waits, holding no slot, until
// each of its blobs is in place in its repository.
func (r *run) execute(ctx context.Context) {
	var wg sync.WaitGroup
	r.probeIndexes(ctx)
	for _, img := range r.images {
		for _, id := range img.dests {
			if !id.present { // an image of an index already there
				wg.Go(func() { r.probe(ctx, id) })
			}
		}
	}
	wg.Wait()
	r.layout()
	for _, b := range r.blobSeq {
		wg.Go(func() { r.pushBlob(ctx, b) })
	}
	for _, img := range r.images {
		for _, id := range img.dests {
			if id.err == nil {
				wg.Go(func() {
					// An index's image gets its manifest, and only then
					// its referrers, in pushIndexes (writeChild).
					if id.err = r.pushManifest(ctx, id); id.err == nil && (!id.img.child || id.present) {
						id.err = r.pushReferrers(ctx, id)
					}
				})
			}
		}
	}
	wg.Wait()
	r.pushIndexes(ctx)
	for _, rp := range r.order {
		for _, d := range append(rp.stale, rp.dest) {
			if d != nil {
				d.Close()
			}
		}
	}
}

// fail records err, and stops the run unless it keeps going.
func (r *run) fail(err error) {
	if err == nil {
		return
	}
	r.causeMu.Lock()
	if r.cause == nil {
		r.cause = err
	}
	r.causeMu.Unlock()
	if !r.o.keepGoing {
		r.cancel()
	}
}

// repoDest returns the docker destination used for the blobs of rp,
// opened once, and again after renew.
func (r *run) repoDest(ctx context.Context, rp *repo) (types.ImageDestination, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.dest == nil {
		d, err := r.destination(ctx, rp.any)
		if err != nil {
			return nil, err
		}
		rp.dest = d
	}
	return rp.dest, nil
}

// renew retires d, rp's destination, after a try through it failed: the
// next try opens a new one.
func (r *run) renew(rp *repo, d types.ImageDestination) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if d != nil && rp.dest == d {
		rp.stale, rp.dest = append(rp.stale, d), nil
	}
}

// withDest runs op with rp's destination, renewing it when op fails.
func (r *run) withDest(ctx context.Context, rp *repo, op func(d types.ImageDestination) error) error {
	d, err := r.repoDest(ctx, rp)
	if err != nil {
		return err
	}
	if err := op(d); err != nil {
		r.renew(rp, d)
		return err
	}
	return nil
}

// pushBlob puts b in place in each repository that needs it: uploaded to
// its home repository unless it is there, then mounted from the home into
// each other repository that lacks it, or uploaded when the registry
// refuses the mount.
//
// When a repository fails, the next one that needs the blob becomes the
// home, so that with --keep-going one broken repository does not fail the
// others. An image whose store no longer gives the blob fails alone, and
// the blob is read from the next image holding it; when none does, or the
// registry refuses the digest, the blob fails everywhere at once.
func (r *run) pushBlob(ctx context.Context, b *blob) {
	var home *repo
	var fatal error
	for _, rp := range b.repos {
		f := r.futures[futureKey{b.digest, rp.named.Name()}]
		err := fatal
		if err == nil {
			f.size, err = r.ensure(ctx, b, rp, home)
		}
		if err == nil && home == nil {
			home = rp
		}
		if sourceFault(ctx, err) != nil || errors.Is(err, ErrDigestMismatch) || ctx.Err() != nil {
			fatal = err
		}
		r.settle(b, rp, err)
	}
}

func (r *run) settle(b *blob, rp *repo, err error) {
	f := r.futures[futureKey{b.digest, rp.named.Name()}]
	if err != nil {
		f.err = fmt.Errorf("%s (%s) in %s: %w", b.source().label, b.digest, rp.named.Name(), err)
	}
	if len(b.bad) > 0 {
		f.bad = maps.Clone(b.bad)
	}
	// Done before the run is stopped, so that the images waiting on it
	// report this error rather than the cancellation.
	close(f.done)
	r.fail(f.err)
}

// source is the image b is read from: the first whose store has not
// failed to give it (the first image when all have).
func (b *blob) source() blobSource {
	for _, s := range b.srcs {
		if b.bad[s.img] == nil {
			return s
		}
	}
	return b.srcs[0]
}

// blame records that the store of s no longer gives b (le says how),
// which fails s's image, and only it.
func (r *run) blame(b *blob, s blobSource, le *description.LayerError) {
	err := fmt.Errorf("%s: %w", s.label, le)
	b.bad[s.img] = err
	// Recorded on the image before the run may be stopped, so that its
	// destinations, which stop waiting then, fail with this error rather
	// than the cancellation.
	s.img.setFault(err)
	if next := b.source(); b.bad[next.img] == nil {
		r.progress.Note("%v; reading it from %s instead", err, next.img.source)
	}
	r.fail(err)
}

// sourceFault returns the *description.LayerError in err when the image the
// blob was read from is at fault: its store no longer gives the layer it
// describes (a store path changed or is gone, or the description is
// wrong). The error of a stopped or timed-out try is not one.
func sourceFault(ctx context.Context, err error) *description.LayerError {
	var le *description.LayerError
	switch {
	case err == nil, ctx.Err() != nil, !errors.As(err, &le):
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTimeout):
		return nil
	}
	return le
}

// ensure makes b present in rp: skipped if it is there, mounted from home
// or from a repository its images name (Image.MountFrom) when one has it,
// else uploaded. size is its size in rp, as the registry reports it or as
// uploaded.
//
// Without mount candidates (the blob's home, on a registry where no
// MountFrom applies), rp is asked for the blob once (HEAD), by PutBlob,
// given the digest, before it opens an upload session. With candidates,
// TryReusingBlob asks rp, then each candidate, and mounts from the first
// that has it; only when none has it does PutBlob ask rp again.
func (r *run) ensure(ctx context.Context, b *blob, rp *repo, home *repo) (size int64, err error) {
	var from []reference.Named
	if home != nil {
		from = append(from, home.named)
	}
	for _, m := range b.mountFrom {
		if m.Name() != rp.named.Name() && (home == nil || m.Name() != home.named.Name()) {
			from = append(from, m)
		}
	}
	if len(from) > 0 {
		there, mountedOK, size, err := r.mount(ctx, b, rp, from)
		switch {
		case err != nil:
			return 0, err
		case there:
			r.tally.count(Skipped, size)
			return size, nil
		case mountedOK:
			r.tally.count(Mounted, size)
			return size, nil
		}
		if home != nil {
			r.progress.Note("%s: %s refused to mount it from %s; uploading", b.source().label, rp.named.Name(), home.named.Name())
		}
	}
	start := time.Now()
	sent, size, err := r.upload(ctx, b, rp)
	switch {
	case err != nil:
		return 0, err
	case !sent:
		r.tally.count(Skipped, size)
		return size, nil
	}
	r.tally.count(Uploaded, size)
	el := time.Since(start)
	r.progress.Note("uploaded %s to %s: %s in %s (%s)", b.source().label, rp.named.Name(), meter.Size(size), el.Round(time.Millisecond), meter.Rate(size, el))
	return size, nil
}

// mount makes b present in rp from the first of from that has it,
// retrying transient failures: there says rp had it already, mounted that
// the registry mounted it, and size is the size the registry reports.
// Neither means no candidate had it, or the registry refused the mount (a
// refused mount is cancelled by containers/image).
func (r *run) mount(ctx context.Context, b *blob, rp *repo, from []reference.Named) (there, mounted bool, size int64, err error) {
	info := b.srcs[0].info
	// containers/image mounts from the locations a blob-info cache names:
	// this one names only from.
	cache, err := MountCandidates(from, []types.BlobInfo{info})
	if err != nil {
		return false, false, 0, err
	}
	err = r.do(ctx, "mounting "+b.source().label+" in "+rp.named.Name(), func(ctx context.Context) error {
		return r.withDest(ctx, rp, func(d types.ImageDestination) error {
			ok, got, err := d.TryReusingBlob(ctx, info, cache, false)
			there, mounted, size = ok && !reusedByMount(got), ok && reusedByMount(got), got.Size
			return err
		})
	})
	return there, mounted, size, err
}

// upload streams b into rp unless rp has it, from the first image whose
// store still gives it: an image whose stream no longer matches its
// description is blamed, and the next one holding the blob is tried. sent
// says it was uploaded; size is its size in rp.
func (r *run) upload(ctx context.Context, b *blob, rp *repo) (sent bool, size int64, err error) {
	err = errors.New("no image holding it is left to read it from")
	for _, s := range b.srcs {
		if b.bad[s.img] != nil {
			continue
		}
		sent, size, err = r.uploadFrom(ctx, s, rp)
		le := sourceFault(ctx, err)
		if le == nil {
			return sent, size, err
		}
		r.blame(b, s, le)
	}
	return false, 0, err
}

// uploadFrom streams the blob from the store of s into rp unless rp has
// it, from scratch on each try (the bytes are deterministic); sent says it
// was uploaded, size is the size the registry reported for a blob it had,
// or the bytes sent.
//
// PutBlob is given the digest, so it asks rp for the blob (HEAD) before
// opening an upload session, and does not hash the stream: the stream's
// own check is the one sha256 pass, and it fails the upload on a mismatch
// before the registry commits the blob. A base image's layer (a blob
// layer) is not hashed at all: the registry refuses a digest its bytes do
// not have, and then the file is re-hashed to name it. The stream is opened on its first
// read, so a blob rp already has is never read from the store.
func (r *run) uploadFrom(ctx context.Context, s blobSource, rp *repo) (sent bool, size int64, err error) {
	err = r.retry.Do(ctx, "uploading "+s.label+" to "+rp.named.Name(), func(ctx context.Context, touch func()) error {
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		stream := &lazyBlob{open: func() (io.ReadCloser, error) {
			rc, _, err := s.img.built.Stream(ctx, s.info.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", s.img.source, err)
			}
			// Every read tells the stall timer the upload is moving.
			t := r.progress.track(s.label, s.info.Size, touchReader{rc, touch})
			return struct {
				io.Reader
				io.Closer
			}{t, closerFunc(func() error { r.progress.untrack(t); return rc.Close() })}, nil
		}}
		defer stream.Close()
		// A digest the registry computes otherwise is refused with
		// DIGEST_INVALID (ErrDigestMismatch, see retry.go).
		return r.withDest(ctx, rp, func(d types.ImageDestination) error {
			got, err := d.PutBlob(ctx, stream, s.info, memory.New(), r.blobIsConfig(s))
			sent, size = stream.wasOpened(), got.Size
			return err
		})
	})
	if errors.Is(err, ErrDigestMismatch) {
		// A base image's layer is streamed unhashed (Built.Stream): the
		// registry's refusal is the check; the store names the file.
		if verr := s.img.built.Verify(ctx, s.info.Digest); verr != nil {
			err = fmt.Errorf("%w: %w", verr, err)
		}
	}
	return sent, size, err
}

// blobIsConfig says whether the blob of s is its image's config.
func (r *run) blobIsConfig(s blobSource) bool { return s.info.Digest == s.img.built.ConfigDigest }

// writeTags writes man (its digest want), the manifest (what: "manifest"
// or "index") of source, as each of tags in rp. A tag that names it
// already (current[i]) is left alone: a re-run writes nothing. note is
// added to the progress line.
func (r *run) writeTags(ctx context.Context, rp *repo, tags []reference.NamedTagged, current []digest.Digest, what, source string, want digest.Digest, man []byte, note string) error {
	for i, tagged := range tags {
		if current[i] == want {
			r.tally.count(ManifestUnchanged, 0)
			r.progress.Note("unchanged %s@%s", tagged, want)
			continue
		}
		err := r.do(ctx, "writing the "+what+" of "+source+" as "+tagged.String(), func(ctx context.Context) error {
			return r.putManifest(ctx, rp, tagged, man)
		})
		if err != nil {
			err = fmt.Errorf("%s %s as %s: %w", what, want, tagged, err)
			r.fail(err)
			return err
		}
		r.tally.count(ManifestWritten, 0)
		r.progress.Note("pushed %s@%s%s", tagged, want, note)
	}
	return nil
}

// pushManifest writes id's manifest under each of its tags once every
// blob of the image is in place in the repository.
func (r *run) pushManifest(ctx context.Context, id *imageDest) error {
	if !id.present {
		if err := r.waitBlobs(ctx, id); err != nil {
			return err
		}
	}
	if err := r.writeTags(ctx, id.repo, id.tags, id.current, "manifest", id.img.source, id.img.built.ManifestDigest, id.img.built.Manifest, ""); err != nil {
		return err
	}
	if r.o.signer != nil {
		for _, tagged := range id.tags {
			if err := r.signTag(ctx, id, tagged); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitBlobs waits until each blob of id's image is in place in its
// repository, and says why the manifest cannot be written if one is not.
func (r *run) waitBlobs(ctx context.Context, id *imageDest) error {
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
			if err := id.img.blobError(bi, f); err != nil {
				errs = append(errs, err)
			}
		default:
		}
	}
	// The blob may not have settled yet when the run was stopped by this
	// image's own store.
	if err := id.img.storeFault(); err != nil && !slices.Contains(errs, err) {
		errs = append(errs, err)
	}
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	if len(errs) > 0 {
		err := fmt.Errorf("no manifest written: %w", errors.Join(causes(errs)...))
		r.fail(err)
		return err
	}
	return nil
}

// blobError says why img cannot have its manifest where f's blob bi
// went: its own store no longer gives the blob, the blob failed there, or
// the registry holds it with another size than img's description gives
// it (the manifest would describe a blob that is not there).
func (img *image) blobError(bi types.BlobInfo, f *future) error {
	if err := f.bad[img]; err != nil {
		return err
	}
	if f.err != nil {
		return f.err
	}
	if err := img.built.CheckStoredSize(bi.Digest, f.size); err != nil {
		return fmt.Errorf("%s: %w", img.labels[bi.Digest], err)
	}
	return nil
}

// putManifest writes man as tagged, a tag in rp: through rp's own
// destination when it was made for that tag (no new client, so no new GET
// /v2/ or token request), else through a new one, closed at once so that a
// run of many tags does not keep a connection open for each. It is the
// one manifest writer of nixpush's registry pushes.
func (r *run) putManifest(ctx context.Context, rp *repo, tagged reference.NamedTagged, man []byte) error {
	put := func(d types.ImageDestination) error {
		if err := d.PutManifest(ctx, man, nil); err != nil {
			return err
		}
		// A docker destination's Commit does nothing; it is called as the
		// ImageDestination contract asks.
		return d.Commit(ctx, nil)
	}
	if tagged.String() == rp.any.String() {
		return r.withDest(ctx, rp, put)
	}
	d, err := r.destination(ctx, tagged)
	if err != nil {
		return err
	}
	defer d.Close()
	return put(d)
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

// lazyBlob is a blob stream opened on its first read. The HTTP transport
// may read and close it on its own goroutine, even after the request
// returned, so it is safe for concurrent use.
type lazyBlob struct {
	open func() (io.ReadCloser, error)

	mu     sync.Mutex
	rc     io.ReadCloser
	err    error
	opened bool
	closed bool
}

func (l *lazyBlob) Read(p []byte) (int, error) {
	l.mu.Lock()
	if !l.opened && !l.closed {
		l.opened = true
		l.rc, l.err = l.open()
	}
	rc, err := l.rc, l.err
	if l.closed {
		err = io.ErrClosedPipe
	}
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return rc.Read(p)
}

// Close closes the stream if it was opened; later reads fail.
func (l *lazyBlob) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.rc == nil {
		return nil
	}
	return l.rc.Close()
}

// wasOpened says whether anything read the stream.
func (l *lazyBlob) wasOpened() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened
}

// closerFunc makes a function an io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
