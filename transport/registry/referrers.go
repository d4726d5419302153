package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/memory"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
)

// WithReferrers says whether each image's referrers (transport.Referrer:
// its SBOM) are pushed beside its manifest; the default is true.
// --no-sbom is WithReferrers(false).
func WithReferrers(push bool) Option {
	return func(o *options) error { o.noReferrers = !push; return nil }
}

// pushReferrers attaches each referrer of id's image to its manifest in
// id's repository, once the manifest is there: a referrer the repository
// lists already is left alone (a re-push writes nothing); otherwise its
// blobs go first, then its manifest (by digest), then, on a registry
// without the referrers API, the fallback tag's index with it added to
// what the tag listed. A referrer never names a blob that is not there.
func (r *run) pushReferrers(ctx context.Context, id *imageDest) error {
	if r.o.noReferrers {
		return nil
	}
	refs, err := id.img.built.Referrers()
	if err != nil || len(refs) == 0 {
		return err
	}
	subject := id.img.built.ManifestDigest
	rr, err := r.referrersReader(ctx, id.repo)
	for _, ref := range refs {
		if err == nil {
			err = r.attach(ctx, id, rr, ref)
		}
		if err != nil {
			err = fmt.Errorf("%s of %s@%s: %w", ref.Label, id.repo.named.Name(), subject, err)
			r.fail(err)
			return err
		}
	}
	return nil
}

// attach pushes ref as a referrer of id's manifest unless it is listed.
func (r *run) attach(ctx context.Context, id *imageDest, rr *referrersReader, ref *transport.Referrer) error {
	rp, subject := id.repo, id.img.built.ManifestDigest
	var list referrersList
	err := r.do(ctx, "listing the referrers of "+rp.named.Name()+"@"+subject.String(), func(ctx context.Context) error {
		var err error
		list, err = rr.list(ctx, subject)
		return err
	})
	if err != nil {
		return fmt.Errorf("listing its referrers: %w", err)
	}
	if list.has(ref.Digest) {
		r.tally.count(ReferrerUnchanged, 0)
		r.progress.Note("unchanged %s %s of %s@%s", ref.Label, ref.Digest, rp.named.Name(), subject)
		return nil
	}
	for i, bd := range ref.Blobs {
		info := types.BlobInfo{Digest: bd.Digest, Size: bd.Size, MediaType: bd.MediaType}
		if err := r.referrerBlob(ctx, rp, info, func() ([]byte, error) { return ref.Blob(bd.Digest) }, i == 0, ref.Label); err != nil {
			return err
		}
	}
	err = r.do(ctx, "writing the "+ref.Label+" manifest "+ref.Digest.String()+" to "+rp.named.Name(), func(ctx context.Context) error {
		return r.withDest(ctx, rp, func(d types.ImageDestination) error {
			return d.PutManifest(ctx, ref.Manifest, &ref.Digest)
		})
	})
	if err != nil {
		return err
	}
	if !list.api {
		tagged, err := reference.WithTag(rp.named, FallbackTag(subject))
		if err != nil {
			return err
		}
		err = r.do(ctx, "listing the "+ref.Label+" under "+tagged.String(), func(ctx context.Context) error {
			// Read again just before writing: the index keeps what
			// others listed since.
			idx, err := rr.fallback(ctx, subject)
			if err != nil {
				return err
			}
			b, changed, err := withReferrer(idx, ref.Descriptor())
			if err != nil || !changed {
				return err
			}
			return r.putManifest(ctx, rp, tagged, b)
		})
		if err != nil {
			return err
		}
	}
	r.tally.count(ReferrerWritten, 0)
	r.progress.Note("attached %s %s to %s@%s", ref.Label, ref.Digest, rp.named.Name(), subject)
	return nil
}

// referrerBlob uploads a referrer's blob (the first, isConfig, is its
// config) to rp, once in the run: referrers sharing it wait for that
// upload and share its outcome. The blob's bytes are read (load) only
// for that upload.
func (r *run) referrerBlob(ctx context.Context, rp *repo, info types.BlobInfo, load func() ([]byte, error), isConfig bool, label string) error {
	v, _ := r.refBlobs.LoadOrStore(futureKey{info.Digest, rp.named.Name()}, &onceErr{})
	return v.(*onceErr).do(func() error {
		data, err := load()
		if err != nil {
			return err
		}
		return r.do(ctx, "uploading the "+label+" blob "+info.Digest.String()+" to "+rp.named.Name(), func(ctx context.Context) error {
			return r.withDest(ctx, rp, func(d types.ImageDestination) error {
				_, err := d.PutBlob(ctx, bytes.NewReader(data), info, memory.New(), isConfig)
				return err
			})
		})
	})
}

// withReferrer returns the fallback index idx with d added, unless it
// lists d already (changed is false then).
func withReferrer(idx ocispec.Index, d ocispec.Descriptor) (b []byte, changed bool, err error) {
	for _, m := range idx.Manifests {
		if m.Digest == d.Digest {
			return nil, false, nil
		}
	}
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	idx.Manifests = append(idx.Manifests, d)
	b, err = json.Marshal(idx)
	if err != nil {
		return nil, false, fmt.Errorf("encoding the referrers index: %w", err)
	}
	return b, true, nil
}

// referrersReader is the reader of rp's referrers, made once in the run
// (credentials looked up, TLS set up, the registry pinged) for all the
// images pushed to rp.
func (r *run) referrersReader(ctx context.Context, rp *repo) (*referrersReader, error) {
	err := rp.referrers.do(func() error {
		return r.do(ctx, "reaching "+rp.named.Name()+" for referrers", func(ctx context.Context) error {
			var err error
			rp.referrers.rr, err = r.newReferrersReader(ctx, rp)
			return err
		})
	})
	return rp.referrers.rr, err
}

// do runs op with retries, each try holding a slot of the run's pool.
func (r *run) do(ctx context.Context, what string, op func(ctx context.Context) error) error {
	return r.retry.Do(ctx, what, func(ctx context.Context, touch func()) error {
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		return op(ctx)
	})
}
