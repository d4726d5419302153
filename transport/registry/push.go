package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport"
)

// ErrIncomplete says some images of a run were not pushed everywhere; the
// Report says which.
var ErrIncomplete = errors.New("not every image was pushed")

// IncompleteError is the error of a run that did not push every image: it
// is ErrIncomplete, and wraps the first failure too.
type IncompleteError struct {
	Failed, Images int
	First          error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("%v: %d of %d images failed; first: %v", ErrIncomplete, e.Failed, e.Images, e.First)
}

func (e *IncompleteError) Unwrap() []error { return []error{ErrIncomplete, e.First} }

// Push pushes each image to each of its destinations and reports what it
// did. Every image description is read and every destination parsed
// before the first request; an error there pushes nothing. The Report is
// returned with any error from the pushes themselves, an *IncompleteError.
func Push(ctx context.Context, images []Image, opts ...Option) (*Report, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	r := &run{
		o:       o,
		retry:   o.retrier(nil),
		tally:   &tally{start: time.Now()},
		repos:   map[string]*repo{},
		blobs:   map[blobKey]*blob{},
		futures: map[futureKey]*future{},
	}
	if err := r.plan(images); err != nil {
		return nil, err
	}
	// Each registry gets its own settings, so credentials go only to the
	// registry they are for; the checks happen before any request.
	named := make([]reference.Named, len(r.order))
	for i, rp := range r.order {
		named[i] = rp.named
	}
	if r.sys, err = o.systemContexts(named); err != nil {
		return nil, err
	}
	r.progress = newProgress(o, len(r.images), r.tally)
	r.retry.note = r.progress.Note

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	r.sem = make(chan struct{}, o.parallel)
	r.execute(runCtx)
	r.progress.Close()
	return r.report(ctx)
}

// run is one Push.
type run struct {
	o        *options
	sys      map[string]*types.SystemContext // by registry host
	retry    Retrier
	tally    *tally
	progress *Progress
	sem      chan struct{} // the run's one bounded pool
	cancel   context.CancelFunc

	images  []*image
	repos   map[string]*repo // by repository name (REGISTRY/PATH)
	order   []*repo
	blobs   map[blobKey]*blob
	blobSeq []*blob
	futures map[futureKey]*future
	ix      indexState // indexes and their images (index.go)
	// refBlobs are the referrers' blobs (futureKey → *onceErr), each
	// uploaded once per repository however many referrers share it (the
	// empty config of every SBOM's artifact manifest).
	refBlobs sync.Map
	causeMu  sync.Mutex
	cause    error // the first failure, for a report with no failed image to name
}

// image is one image of the run.
type image struct {
	source string
	built  *transport.Built
	blobs  []types.BlobInfo // config, then layers, each once
	labels map[digest.Digest]string
	// mountFrom are the repositories that may hold its blobs, by
	// registry host (Image.MountFrom).
	mountFrom map[string][]reference.Named
	dests     []*imageDest
	// child says it is an image of an index: its destinations have no
	// tags, and the index reports it (index.go).
	child bool

	faultMu sync.Mutex
	fault   error // why its store no longer gives a blob (run.blame)
}

// setFault records that img's store no longer gives one of its blobs.
func (img *image) setFault(err error) {
	img.faultMu.Lock()
	defer img.faultMu.Unlock()
	if img.fault == nil {
		img.fault = err
	}
}

// storeFault returns what setFault recorded, or nil.
func (img *image) storeFault() error {
	img.faultMu.Lock()
	defer img.faultMu.Unlock()
	return img.fault
}

// imageDest is an image's tags in one repository.
type imageDest struct {
	img  *image
	repo *repo
	tags []reference.NamedTagged
	err  error
	// current[i] is the manifest digest tags[i] named before the run
	// ("" for none, or not known); present says the repository held the
	// image's manifest already, and so all of its blobs (see probe).
	current []digest.Digest
	present bool
	// signed are the tags signed by the run's key (WithSigner).
	signed map[string]bool
	// written is the write of an index's image's manifest by digest
	// (writeChild), shared by the indexes that need it here.
	written onceErr
}

// onceErr is work done once, its error shared by all who wait for it.
type onceErr struct {
	once sync.Once
	err  error
}

func (o *onceErr) do(f func() error) error {
	o.once.Do(func() { o.err = f() })
	return o.err
}

// repo is a destination repository.
type repo struct {
	named    reference.Named // trimmed: REGISTRY/PATH
	registry string
	any      reference.NamedTagged // some tag in it, to make a destination for blobs
	dest     types.ImageDestination
	// mu guards dest and stale.
	mu sync.Mutex
	// stale are destinations a failed try went through, closed at the
	// end: containers/image remembers a failed ping (GET /v2/) for the
	// life of a client, so the next try gets a new one.
	stale []types.ImageDestination
	// referrers is its referrers reader (referrersReader), made once.
	referrers struct {
		onceErr
		rr *referrersReader
	}
}

type blobKey struct {
	registry string
	digest   digest.Digest
}

// blob is a blob needed by some images in some repositories of a registry.
type blob struct {
	digest digest.Digest
	// srcs are the images holding it, in plan order: it is read from the
	// first whose store still gives it.
	srcs  []blobSource
	repos []*repo // in need order; repos[0] is the home
	// mountFrom are the repositories its images name that may hold it.
	mountFrom []reference.Named
	// bad holds the images whose store no longer gives the blob, found
	// while streaming it from them. Only the blob's pushBlob goroutine
	// touches it; each future gets a copy when it is settled.
	bad map[*image]error
}

// blobSource is an image holding a blob, and the blob as it describes it:
// a shared digest means the same bytes, but each image has its own store
// paths (and its own claim of the size).
type blobSource struct {
	img   *image
	info  types.BlobInfo
	label string
}

type futureKey struct {
	digest digest.Digest
	repo   string
}

// future is a blob's arrival in one repository.
type future struct {
	done chan struct{}
	err  error
	// size is the blob's size in the repository: what the registry
	// reported for a blob it had, or what was uploaded. Each image checks
	// its own claim against it.
	size int64
	// bad are the images whose store no longer gives the blob, as known
	// when the future was settled: their manifests fail, not the others'.
	bad map[*image]error
}

// plan reads every image (or takes it built) and its destinations, by
// repository; layout lays out the blob work once probe has asked which
// repositories hold which manifests.
func (r *run) plan(images []Image) error {
	if len(images) == 0 {
		return errors.New("no images to push")
	}
	tagOwner := map[string]string{} // REGISTRY/REPO:TAG → source
	for _, in := range images {
		built := in.Built
		if built == nil && in.Index == nil {
			ref, err := transport.NewReference(strings.TrimPrefix(in.Source, transport.Name+":"), r.o.layerOpts...)
			if err != nil {
				return fmt.Errorf("image %s: %w", in.Source, err)
			}
			built, in.Index = ref.Built(), ref.Index()
		}
		if in.Index != nil {
			if err := r.planIndex(in, tagOwner); err != nil {
				return err
			}
			continue
		}
		img := &image{source: in.Source, built: built, labels: map[digest.Digest]string{}}
		for _, b := range built.Blobs() {
			img.blobs = append(img.blobs, types.BlobInfo{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
			img.labels[b.Digest] = built.Name(b) + " of " + in.Source
		}
		if len(in.Destinations) == 0 {
			return fmt.Errorf("image %s: no destinations", in.Source)
		}
		byRepo := map[string]*imageDest{}
		err := r.destinations("image", in, tagOwner, func(rp *repo, tagged reference.NamedTagged) {
			id := byRepo[rp.named.Name()]
			if id == nil {
				id = &imageDest{img: img, repo: rp}
				byRepo[rp.named.Name()] = id
				img.dests = append(img.dests, id)
			}
			id.tags = append(id.tags, tagged)
		})
		if err != nil {
			return err
		}
		mountFrom, err := mountRepos(in.MountFrom, img.dests)
		if err != nil {
			return fmt.Errorf("image %s: %w", in.Source, err)
		}
		img.mountFrom = mountFrom
		r.images = append(r.images, img)
	}
	return nil
}

// repo returns the repository of tagged, adding it on first use.
func (r *run) repo(tagged reference.NamedTagged) *repo {
	named := reference.TrimNamed(tagged)
	if rp := r.repos[named.Name()]; rp != nil {
		return rp
	}
	rp := &repo{named: named, registry: reference.Domain(named), any: tagged}
	r.repos[named.Name()] = rp
	r.order = append(r.order, rp)
	return rp
}

// mountRepos reads an image's MountFrom repositories, by registry host of
// its destinations: "REGISTRY/REPO" must be on one of them, "REPO" is on
// each. Registries mount only their own blobs.
func mountRepos(names []string, dests []*imageDest) (map[string][]reference.Named, error) {
	if len(names) == 0 {
		return nil, nil
	}
	hosts := map[string]bool{}
	var order []string
	for _, id := range dests {
		if !hosts[id.repo.registry] {
			hosts[id.repo.registry] = true
			order = append(order, id.repo.registry)
		}
	}
	out := map[string][]reference.Named{}
	for _, m := range names {
		on := order
		if host, _, ok := registryPrefix(m); ok {
			if !hosts[host] {
				return nil, fmt.Errorf("mount-from %q: not on a destination's registry (%s); registries mount only their own blobs", redact.Reference(m), strings.Join(order, ", "))
			}
			on = []string{host}
		}
		for _, host := range on {
			named, err := MountRepo(host, m)
			if err != nil {
				return nil, err
			}
			out[host] = appendRepos(out[host], named)
		}
	}
	return out, nil
}

// MountRepo reads a mount-from repository for the registry host: "REPO"
// is on host, and "REGISTRY/REPO" must be (registries mount only their
// own blobs); a tag is refused.
func MountRepo(host, name string) (reference.Named, error) {
	if name == "" {
		return nil, errors.New("mount-from: empty repository name")
	}
	repo := name
	if h, rest, ok := registryPrefix(name); ok {
		if h != host {
			return nil, fmt.Errorf("mount-from %q: not on the destination's registry %s; registries mount only their own blobs", redact.Reference(name), host)
		}
		repo = rest
	}
	named, err := reference.ParseNormalizedNamed(host + "/" + repo)
	if err != nil {
		return nil, fmt.Errorf("mount-from %q: %w", redact.Reference(name), err)
	}
	if _, ok := named.(reference.NamedTagged); ok {
		return nil, fmt.Errorf("mount-from %q: a repository, without a tag", redact.Reference(name))
	}
	return reference.TrimNamed(named), nil
}

// registryPrefix splits "REGISTRY/REPO" when its first component names a
// registry host (it has a dot or a colon, or is localhost), as docker
// reads references.
func registryPrefix(name string) (host, repo string, ok bool) {
	first, rest, _ := strings.Cut(name, "/")
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first, rest, true
	}
	return "", name, false
}

// appendRepos appends each of add not already in repos.
func appendRepos(repos []reference.Named, add ...reference.Named) []reference.Named {
	for _, a := range add {
		if !slices.ContainsFunc(repos, func(r reference.Named) bool { return r.Name() == a.Name() }) {
			repos = append(repos, a)
		}
	}
	return repos
}

// destination opens a containers/image docker destination for tagged.
func (r *run) destination(ctx context.Context, tagged reference.NamedTagged) (types.ImageDestination, error) {
	ref, err := docker.NewReference(tagged)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", tagged, err)
	}
	d, err := ref.NewImageDestination(ctx, r.sysFor(tagged))
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", tagged, err)
	}
	return d, nil
}

// sysFor returns the containers/image settings of named's registry.
func (r *run) sysFor(named reference.Named) *types.SystemContext {
	return r.sys[reference.Domain(named)]
}

// acquire takes a slot of the run's pool.
func (r *run) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) release() { <-r.sem }

// outcome is the status of a destination whose push ended with err, and
// the message the report gives it.
func outcome(ctx context.Context, err error) (string, string) {
	switch {
	case err == nil:
		return StatusPushed, ""
	case errors.Is(err, context.Canceled) && ctx.Err() == nil:
		return StatusCanceled, "stopped after another image failed (see --keep-going)"
	default:
		return StatusFailed, redact.String(err.Error())
	}
}

// add records a destination's failure err in ir, unless ir holds a
// failure already; it says whether err is a failure (not a stop).
func (ir *ImageReport) add(ctx context.Context, err error) bool {
	status, msg := outcome(ctx, err)
	if ir.Status != StatusFailed {
		ir.Status, ir.Error = status, msg
	}
	return status == StatusFailed
}

// addTags reports each of tags with the outcome of err; signed are the
// tags signed.
func (ir *ImageReport) addTags(ctx context.Context, err error, tags []reference.NamedTagged, signed map[string]bool) {
	status, msg := outcome(ctx, err)
	for _, t := range tags {
		ir.Destinations = append(ir.Destinations, DestinationReport{Reference: t.String(), Status: status, Error: msg, Signed: signed[t.String()]})
	}
}

// add adds ir to rep and to its totals.
func (rep *Report) add(ir ImageReport) {
	rep.Totals.Images++
	if ir.Status != StatusPushed {
		rep.Totals.Failed++
	}
	rep.Images = append(rep.Images, ir)
}

// report fills in each image's outcome and the totals.
func (r *run) report(ctx context.Context) (*Report, error) {
	rep := &Report{Totals: r.tally.snapshot(), Seconds: time.Since(r.tally.start).Seconds()}
	var first error
	for _, img := range r.images {
		if img.child {
			continue // in its index's report
		}
		ir := ImageReport{Source: img.source, Digest: img.built.ManifestDigest, Status: StatusPushed}
		for _, id := range img.dests {
			if id.err != nil && ir.add(ctx, id.err) && first == nil {
				first = fmt.Errorf("image %s to %s: %w", img.source, id.repo.named.Name(), id.err)
			}
			ir.addTags(ctx, id.err, id.tags, id.signed)
		}
		rep.add(ir)
	}
	first = r.reportIndexes(ctx, rep, first)
	if ctx.Err() != nil && first == nil {
		first = ctx.Err()
	}
	if rep.Totals.Failed > 0 {
		if first == nil {
			// Every image not pushed was stopped by a failure no image
			// of the report holds (an image whose store failed to give a
			// blob another image needed, after its own manifests were
			// written).
			r.causeMu.Lock()
			first = r.cause
			r.causeMu.Unlock()
		}
		if first == nil {
			first = errors.New("canceled")
		}
		return rep, &IncompleteError{Failed: rep.Totals.Failed, Images: rep.Totals.Images, First: first}
	}
	return rep, nil
}

// destinations parses in's destinations, checks that no other image or
// index of the run was given one of them, and calls add with the
// repository and tag of each (once, however often it is listed). kind
// ("image", "index") names in in errors.
func (r *run) destinations(kind string, in Image, tagOwner map[string]string, add func(*repo, reference.NamedTagged)) error {
	for _, d := range in.Destinations {
		tagged, err := ParseDestination(d)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, in.Source, err)
		}
		full := tagged.String()
		if owner, ok := tagOwner[full]; ok && owner != in.Source {
			return fmt.Errorf("destination %s is given to two images: %s and %s", full, owner, in.Source)
		} else if ok {
			continue
		}
		tagOwner[full] = in.Source
		add(r.repo(tagged), tagged)
	}
	return nil
}
