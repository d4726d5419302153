package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
)

// probe asks id's repository, before any of its blobs is checked, which
// manifest each of id's tags names, and, when none names the image's,
// whether the repository holds the image's manifest under its digest. A
// registry stores a manifest only once every blob it names is in the
// repository, so when the manifest is there no blob needs checking: a
// re-push of an unchanged image makes one HEAD per tag (after the GET /v2/
// that every new containers/image client makes first), whatever its number
// of layers, and writes a tag only if it names another manifest.
//
// A question that fails (a 404 for a new tag, an error, no answer within
// the run's timeout) is only a question not answered: the blobs are then
// checked one by one, where a real failure shows, with retries. (A 401 or
// 403 is no answer either: some registries refuse a pull of a repository
// that a push would create.) Only a TLS certificate that fails
// verification fails id at once, as the push would meet it too.
func (r *run) probe(ctx context.Context, id *imageDest) {
	id.current, id.present, id.err = r.probeTags(ctx, id.repo, id.tags, id.img.built.ManifestDigest)
}

// probeTags asks which manifest each of tags in rp names (current) and,
// when none names want, whether rp holds want by digest (present).
func (r *run) probeTags(ctx context.Context, rp *repo, tags []reference.NamedTagged, want digest.Digest) (current []digest.Digest, present bool, err error) {
	current = make([]digest.Digest, len(tags))
	errs := make([]error, len(tags))
	var wg sync.WaitGroup
	for i, t := range tags {
		wg.Go(func() { current[i], errs[i] = r.manifestDigest(ctx, t) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.fail(err)
		return current, false, err
	}
	if slices.Contains(current, want) {
		return current, true, nil
	}
	canonical, err := reference.WithDigest(rp.named, want)
	if err != nil {
		return current, false, nil
	}
	d, err := r.manifestDigest(ctx, canonical)
	if err != nil {
		r.fail(err)
		return current, false, err
	}
	return current, d == want, nil
}

// manifestDigest asks the registry which manifest ref names (HEAD), as a
// pull would: "" when it names none, or when the question failed; an error
// only for a TLS certificate that fails verification.
//
// docker.GetDigest makes a new client, and so a GET /v2/ first: the only
// way containers/image's public API offers to ask. A manifest HEAD of
// nixpush's own would save that request, but would have to redo
// containers/image's authentication (tokens, credential helpers, the
// per-registry credential rules of SystemContexts) to send credentials
// only where they belong.
func (r *run) manifestDigest(ctx context.Context, ref reference.Named) (digest.Digest, error) {
	dref, err := docker.NewReference(ref)
	if err != nil {
		return "", nil
	}
	var d digest.Digest
	var fatal error
	once := Retrier{timeout: r.retry.timeout}
	once.Do(ctx, "", func(ctx context.Context, touch func()) error { //nolint:errcheck // a failed question is no answer
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		d, err = docker.GetDigest(ctx, r.sysFor(ref), dref)
		if UntrustedCertificate(err) {
			fatal = fmt.Errorf("asking for manifest %s: %w: %w", ref, ErrCertificate, err)
		}
		return nil
	})
	return d, fatal
}

// layout lays out the blob work of the destinations whose repository
// lacks their image's manifest: the blobs per registry, in the order images
// need them, each repository that needs a blob waiting on its own future.
// A blob's first repository is its home.
func (r *run) layout() {
	for _, img := range r.images {
		for _, id := range img.dests {
			if id.present || id.err != nil {
				continue
			}
			for _, bi := range img.blobs {
				k := blobKey{id.repo.registry, bi.Digest}
				b := r.blobs[k]
				if b == nil {
					b = &blob{digest: bi.Digest, bad: map[*image]error{}}
					r.blobs[k] = b
					r.blobSeq = append(r.blobSeq, b)
				}
				if last := len(b.srcs) - 1; last < 0 || b.srcs[last].img != img {
					b.srcs = append(b.srcs, blobSource{img: img, info: bi, label: img.labels[bi.Digest]})
					b.mountFrom = appendRepos(b.mountFrom, img.mountFrom[id.repo.registry]...)
					b.mountFrom = appendRepos(b.mountFrom, img.baseRepos(bi.Digest, id.repo.registry)...)
				}
				fk := futureKey{bi.Digest, id.repo.named.Name()}
				if r.futures[fk] == nil {
					r.futures[fk] = &future{done: make(chan struct{})}
					b.repos = append(b.repos, id.repo)
				}
			}
		}
	}
}
