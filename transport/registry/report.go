package registry

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/transport/meter"
)

// Report is what a run did: per image, its manifest digest and where it
// went; in total, what moved. WriteJSON writes it for --report.
type Report struct {
	Images []ImageReport `json:"images"`
	Totals Totals        `json:"totals"`
	// Seconds is the run's wall time.
	Seconds float64 `json:"seconds"`
}

// Status of an image or destination.
const (
	StatusPushed   = "pushed"
	StatusFailed   = "failed"
	StatusCanceled = "canceled" // not finished: another image failed first
)

// ImageReport is one image of a Report.
type ImageReport struct {
	// Source is the image description.
	Source string `json:"source"`
	// Digest is the manifest digest: what each destination serves, and
	// what to sign.
	Digest       digest.Digest       `json:"digest"`
	Destinations []DestinationReport `json:"destinations"`
	// Status is StatusPushed when every destination was, else
	// StatusFailed or StatusCanceled.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Platforms are, for an index, its images: Digest is then the
	// index's digest.
	Platforms []PlatformReport `json:"platforms,omitempty"`
}

// PlatformReport is one image of an index.
type PlatformReport struct {
	// Platform is os/architecture[/variant].
	Platform string `json:"platform"`
	// Digest is the image's manifest digest.
	Digest digest.Digest `json:"digest"`
	// Image is the image description.
	Image string `json:"image"`
}

// DestinationReport is one tag an image was pushed to.
type DestinationReport struct {
	// Reference is REGISTRY/REPO:TAG.
	Reference string `json:"reference"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
	// Signed says the tag has a sigstore signature by the run's key
	// (WithSigner): written by the run, or there already.
	Signed bool `json:"signed,omitempty"`
}

// Totals counts blobs by what happened to them, per repository that
// needed them: a blob uploaded to one repository and mounted into two
// counts one upload and two mounts.
type Totals struct {
	Uploaded  Count `json:"uploaded"`
	Mounted   Count `json:"mounted"`
	Skipped   Count `json:"skipped"`   // already in the repository
	Manifests int   `json:"manifests"` // manifests written, one per tag
	// Unchanged counts tags that already named the image's manifest.
	Unchanged int `json:"unchanged"`
	Images    int `json:"images"`
	Failed    int `json:"failed"`

	// Signatures counts sigstore signatures written (WithSigner), one per
	// tag; AlreadySigned the tags that had one by the key already.
	Signatures    int `json:"signatures,omitempty"`
	AlreadySigned int `json:"alreadySigned,omitempty"`
	// Referrers counts referrers (SBOMs) written, one per image and
	// repository; ReferrersUnchanged those already there.
	Referrers          int `json:"referrers"`
	ReferrersUnchanged int `json:"referrersUnchanged"`
}

// Count is a number of blobs and their bytes.
type Count struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

func (c *Count) add(size int64) { c.Blobs++; c.Bytes += size }

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFile writes r as JSON to path.
func (r *Report) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	return nil
}

// WriteSummary writes r for people: the totals, then each image with its
// digest and tags, and the error of each failed one.
func (r *Report) WriteSummary(w io.Writer) error {
	t := r.Totals
	fmt.Fprintf(w, "%d/%d images pushed in %.1fs; blobs: %d uploaded (%s), %d mounted (%s), %d skipped (%s); %d manifests written, %d tags unchanged\n",
		t.Images-t.Failed, t.Images, r.Seconds,
		t.Uploaded.Blobs, meter.Size(t.Uploaded.Bytes), t.Mounted.Blobs, meter.Size(t.Mounted.Bytes),
		t.Skipped.Blobs, meter.Size(t.Skipped.Bytes), t.Manifests, t.Unchanged)
	if t.Signatures+t.AlreadySigned > 0 {
		fmt.Fprintf(w, "signatures: %d written, %d tags already signed by the key\n", t.Signatures, t.AlreadySigned)
	}
	if t.Referrers+t.ReferrersUnchanged > 0 {
		fmt.Fprintf(w, "referrers (SBOMs): %d written, %d unchanged\n", t.Referrers, t.ReferrersUnchanged)
	}
	for _, img := range r.Images {
		fmt.Fprintf(w, "%s %s %s\n", img.Status, img.Digest, img.Source)
		for _, p := range img.Platforms {
			fmt.Fprintf(w, "    %s: %s\n", p.Platform, p.Digest)
		}
		for _, d := range img.Destinations {
			if d.Status == StatusPushed && d.Signed {
				fmt.Fprintf(w, "    %s (signed)\n", d.Reference)
			} else if d.Status == StatusPushed {
				fmt.Fprintf(w, "    %s\n", d.Reference)
			} else {
				fmt.Fprintf(w, "    %s: %s %s\n", d.Reference, d.Status, d.Error)
			}
		}
	}
	return nil
}

// tally is a Report's totals being counted by concurrent workers.
type tally struct {
	mu     sync.Mutex
	totals Totals
	start  time.Time
}

func (t *tally) count(what Outcome, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch what {
	case Uploaded:
		t.totals.Uploaded.add(size)
	case Mounted:
		t.totals.Mounted.add(size)
	case Skipped:
		t.totals.Skipped.add(size)
	case ManifestWritten:
		t.totals.Manifests++
	case ManifestUnchanged:
		t.totals.Unchanged++
	case SignatureWritten:
		t.totals.Signatures++
	case SignatureUnchanged:
		t.totals.AlreadySigned++
	case ReferrerWritten:
		t.totals.Referrers++
	case ReferrerUnchanged:
		t.totals.ReferrersUnchanged++
	}
}

func (t *tally) snapshot() Totals {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.totals
}

// Outcome is what happened to a blob in a repository, or to a tag.
type Outcome int

// Outcomes, as Totals counts them.
const (
	Uploaded Outcome = iota
	Mounted
	Skipped // already in the repository
	ManifestWritten
	// ManifestUnchanged: the tag already named the manifest.
	ManifestUnchanged
	// SignatureWritten: a tag was signed (WithSigner).
	SignatureWritten
	// SignatureUnchanged: a tag had a signature by the key already.
	SignatureUnchanged
	// ReferrerWritten: a referrer (an SBOM) was attached to a manifest;
	// ReferrerUnchanged: the repository listed it already.
	ReferrerWritten
	ReferrerUnchanged
)

// Report returns the report of a copy that p showed: images, and the
// totals p counted.
func (p *Progress) Report(images ...ImageReport) *Report {
	rep := &Report{Images: images, Totals: p.tally.snapshot(), Seconds: time.Since(p.tally.start).Seconds()}
	for _, img := range images {
		rep.Totals.Images++
		if img.Status != StatusPushed {
			rep.Totals.Failed++
		}
	}
	return rep
}
