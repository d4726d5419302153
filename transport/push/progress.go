package push

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/schollz/progressbar/v3"

	"github.com/nixpush/nixpush/transport/meter"
	"go.podman.io/image/v5/types"
)

// reporter turns containers/image progress events into output: live bars
// on a terminal, plain lines otherwise. One goroutine owns all state.
type reporter struct {
	events   chan types.ProgressProperties
	interval time.Duration
	w        io.Writer
	terminal bool
	names    blobNames
	wg       sync.WaitGroup

	blobs    map[digest.Digest]*blobState
	active   []*blobState // blobs with a live bar, in start order
	total    *progressbar.ProgressBar
	live     *meter.Live // on a terminal
	lastDraw time.Time
	start    time.Time
	sent     int64 // bytes read from sources
	counts   struct{ uploaded, skipped int }
}

type blobState struct {
	info    types.BlobInfo
	name    string
	bar     *progressbar.ProgressBar
	started time.Time
	offset  uint64
}

// barInterval is how often containers/image reports reads when bars are
// drawn; lines use the caller's interval.
const barInterval = 150 * time.Millisecond

func newReporter(w io.Writer, terminal bool, lineInterval time.Duration, names blobNames) *reporter {
	r := &reporter{
		events:   make(chan types.ProgressProperties),
		interval: lineInterval,
		w:        w,
		terminal: terminal,
		names:    names,
		blobs:    map[digest.Digest]*blobState{},
		start:    time.Now(),
	}
	if terminal {
		r.interval = barInterval
		r.live = meter.NewLive(w)
		max := names.total
		if max <= 0 {
			max = -1 // unknown: progressbar shows a spinner
		}
		r.total = meter.NewBar(max, "total")
	}
	r.wg.Add(1)
	go r.loop()
	return r
}

// close waits for every event to be handled.
func (r *reporter) close() {
	close(r.events)
	r.wg.Wait()
}

func (r *reporter) loop() {
	defer r.wg.Done()
	for ev := range r.events {
		r.handle(ev)
	}
	if r.terminal {
		r.clear()
	}
}

// summary prints the totals of a successful copy.
func (r *reporter) summary() {
	el := time.Since(r.start)
	fmt.Fprintf(r.w, "%d blobs uploaded (%s in %s, %s), %d skipped: already at the destination\n",
		r.counts.uploaded, meter.Size(int64(r.sent)), el.Round(time.Millisecond), meter.Rate(r.sent, el), r.counts.skipped)
}

func (r *reporter) handle(ev types.ProgressProperties) {
	d := ev.Artifact.Digest
	b := r.blobs[d]
	if b == nil {
		b = &blobState{info: ev.Artifact, name: r.names.name(ev.Artifact), started: time.Now()}
		r.blobs[d] = b
	}
	switch ev.Event {
	case types.ProgressEventNewArtifact:
		if r.terminal {
			b.bar = meter.NewBar(max(ev.Artifact.Size, 1), b.name)
			r.active = append(r.active, b)
		}
		// Lines wait for the first read: the destination may still find
		// the blob (the config is checked only now) and skip it.
	case types.ProgressEventRead:
		r.advance(b, ev.Offset)
		if !r.terminal {
			el := time.Since(b.started)
			fmt.Fprintf(r.w, "%s: %s / %s, %s\n", b.name, meter.Size(int64(b.offset)), meter.Size(b.info.Size), meter.Rate(int64(b.offset), el))
		}
	case types.ProgressEventDone:
		r.advance(b, ev.Offset)
		if b.offset == 0 && b.info.Size > 0 {
			// The destination's own existence check found it (the config).
			r.counts.skipped++
			r.finish(b, fmt.Sprintf("%s: skipped, the destination has %s", b.name, short(d)))
			break
		}
		r.counts.uploaded++
		el := time.Since(b.started)
		r.finish(b, fmt.Sprintf("%s: done, %s in %s (%s)", b.name, meter.Size(int64(b.offset)), el.Round(time.Millisecond), meter.Rate(int64(b.offset), el)))
	case types.ProgressEventSkipped:
		r.counts.skipped++
		if r.total != nil && b.info.Size > 0 {
			_ = r.total.Add64(b.info.Size)
		}
		r.finish(b, fmt.Sprintf("%s: skipped, the destination has %s", b.name, short(d)))
	}
	if r.terminal && (ev.Event != types.ProgressEventRead || time.Since(r.lastDraw) >= barInterval/2) {
		r.draw()
	}
}

// advance moves a blob's count to offset.
func (r *reporter) advance(b *blobState, offset uint64) {
	if offset <= b.offset {
		return
	}
	delta := int64(offset - b.offset)
	b.offset = offset
	r.sent += delta
	if b.bar != nil {
		_ = b.bar.Set64(int64(offset))
	}
	if r.total != nil {
		_ = r.total.Add64(delta)
	}
}

// finish retires a blob: its line is printed once, above the live bars.
func (r *reporter) finish(b *blobState, line string) {
	if !r.terminal {
		fmt.Fprintln(r.w, line)
		return
	}
	for i, a := range r.active {
		if a == b {
			r.active = append(r.active[:i], r.active[i+1:]...)
			break
		}
	}
	r.clear()
	fmt.Fprintln(r.w, line)
}

// clear erases the live region.
func (r *reporter) clear() { r.live.Clear() }

// draw redraws the live region: one bar per blob being copied, then the total.
func (r *reporter) draw() {
	lines := make([]string, 0, len(r.active)+1)
	for _, a := range r.active {
		lines = append(lines, a.bar.String())
	}
	r.live.Draw(append(lines, r.total.String())...)
	r.lastDraw = time.Now()
}

// blobNames names the blobs of one source for people.
type blobNames struct {
	byDigest map[digest.Digest]string
	total    int64 // bytes of all blobs, or 0 if unknown
}

func (n blobNames) name(info types.BlobInfo) string {
	if s, ok := n.byDigest[info.Digest]; ok {
		return s
	}
	return "blob " + short(info.Digest)
}

func short(d digest.Digest) string {
	s := d.String()
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	return s
}
