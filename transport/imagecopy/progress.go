package imagecopy

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
)

// progressInterval is how often copy.Image reports how far it read a blob.
const progressInterval = 150 * time.Millisecond

// events feeds copy.Image's progress events to the registry's progress
// view: each blob being copied is a registry.Transfer. One goroutine owns
// the transfers.
type events struct {
	ch    chan types.ProgressProperties
	p     *registry.Progress
	names map[digest.Digest]string
	done  chan struct{}
}

func (c *copier) events() *events { return newEvents(c.progress, blobNames(c.src)) }

func newEvents(p *registry.Progress, names map[digest.Digest]string) *events {
	e := &events{ch: make(chan types.ProgressProperties), p: p, names: names, done: make(chan struct{})}
	go e.loop()
	return e
}

// close waits for every event to be handled; copy.Image must have
// returned.
func (e *events) close() {
	close(e.ch)
	<-e.done
}

func (e *events) loop() {
	defer close(e.done)
	transfers := map[digest.Digest]*registry.Transfer{}
	for ev := range e.ch {
		d := ev.Artifact.Digest
		t := transfers[d]
		switch ev.Event {
		case types.ProgressEventNewArtifact:
			if t == nil {
				transfers[d] = e.p.Transfer(e.name(ev.Artifact), ev.Artifact.Size)
			}
		case types.ProgressEventRead:
			if t != nil {
				t.Set(int64(ev.Offset))
			}
		case types.ProgressEventDone, types.ProgressEventSkipped:
			what := registry.Uploaded
			if ev.Event == types.ProgressEventSkipped || (ev.Offset == 0 && ev.Artifact.Size > 0) {
				// The destination had it (for the config, its own check
				// found it only now).
				what = registry.Skipped
			}
			if t == nil {
				t = e.p.Transfer(e.name(ev.Artifact), ev.Artifact.Size)
			}
			t.Set(int64(ev.Offset))
			t.Done(what)
			delete(transfers, d)
		}
	}
	// A failed copy leaves blobs unfinished.
	for _, t := range transfers {
		t.Abandon()
	}
}

func (e *events) name(info types.BlobInfo) string {
	if s, ok := e.names[info.Digest]; ok {
		return s
	}
	return "blob " + short(info.Digest)
}

// blobNames names the blobs of src for people: for a nix: image, each
// layer by its position and first store path.
func blobNames(src types.ImageReference) map[digest.Digest]string {
	n := map[digest.Digest]string{}
	if ref, ok := src.(*transport.Reference); ok {
		built := []*transport.Built{ref.Built()}
		if bi := ref.Index(); bi != nil {
			built = bi.Images
		}
		for _, img := range built {
			for _, b := range img.Blobs() {
				if _, ok := n[b.Digest]; !ok {
					n[b.Digest] = img.Name(b)
				}
			}
		}
	}
	return n
}

func short(d digest.Digest) string {
	s := d.String()
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	return s
}
