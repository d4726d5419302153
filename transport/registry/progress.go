package registry

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/nixpush/nixpush/transport/meter"
)

// Progress is nixpush's one progress view, of a push or a copy: on a
// terminal, a live region with a bar per blob being uploaded and a total
// line; otherwise a plain line every interval, fit for CI logs. Notes
// (each blob uploaded, retries, written tags) are printed above the live
// region. Without a writer (WithProgress) it prints nothing.
type Progress struct {
	w        io.Writer
	terminal bool
	interval time.Duration
	tally    *tally
	images   int
	live     *meter.Live // on a terminal
	start    time.Time
	sent     atomic.Int64

	mu     sync.Mutex
	active []*tracked

	stop chan struct{}
	wg   sync.WaitGroup
}

// barRefresh is how often the terminal view is redrawn.
const barRefresh = 200 * time.Millisecond

func newProgress(o *options, images int, t *tally) *Progress {
	p := &Progress{w: o.progress, terminal: o.progressTerminal, interval: o.progressLineInterval,
		tally: t, images: images, start: time.Now(), stop: make(chan struct{})}
	if p.w == nil {
		return p
	}
	if p.terminal {
		p.interval = barRefresh
		p.live = meter.NewLive(p.w)
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *Progress) loop() {
	defer p.wg.Done()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.mu.Lock()
			if p.terminal {
				p.draw()
			} else {
				fmt.Fprintln(p.w, p.line(3))
			}
			p.mu.Unlock()
		}
	}
}

// NewProgress starts c's progress view, for a copy of images images;
// Close stops it.
func (c *Config) NewProgress(images int) *Progress {
	return newProgress(c.o, images, &tally{start: time.Now()})
}

// Close stops the view and erases the live region.
func (p *Progress) Close() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// Note prints one line.
func (p *Progress) Note(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// tracked counts the bytes read from a blob being uploaded.
type tracked struct {
	r     io.Reader
	label string
	size  int64
	n     atomic.Int64
	p     *Progress
	bar   *progressbar.ProgressBar // terminal only
}

func (t *tracked) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.n.Add(int64(n))
	t.p.sent.Add(int64(n))
	return n, err
}

// track returns r counted as the upload of label.
func (p *Progress) track(label string, size int64, r io.Reader) *tracked {
	t := &tracked{r: r, label: label, size: size, p: p}
	if p.terminal {
		t.bar = meter.NewBar(size, label)
	}
	p.mu.Lock()
	p.active = append(p.active, t)
	p.mu.Unlock()
	return t
}

// untrack ends an upload; bytes of a failed try stay counted as sent.
func (p *Progress) untrack(t *tracked) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.active {
		if a == t {
			p.active = append(p.active[:i], p.active[i+1:]...)
			break
		}
	}
}

// Transfer shows a blob being uploaded by someone else's reader (copy.Image
// reporting how far it read): label names it for people, size is its
// size. Set moves it on; Done retires it.
func (p *Progress) Transfer(label string, size int64) *Transfer {
	return &Transfer{t: p.track(label, size, nil), start: time.Now()}
}

// Transfer is a blob being uploaded, as Progress.Transfer shows it.
type Transfer struct {
	t     *tracked
	start time.Time
}

// Set says n bytes of the blob were read so far.
func (t *Transfer) Set(n int64) {
	if old := t.t.n.Swap(n); n > old {
		t.t.p.sent.Add(n - old)
	}
}

// Done retires the blob, counted as what happened to it (Uploaded,
// Skipped or Mounted); an upload gets a line saying so.
func (t *Transfer) Done(what Outcome) {
	p := t.t.p
	p.untrack(t.t)
	p.tally.count(what, t.t.size)
	if what == Uploaded {
		el := time.Since(t.start)
		p.Note("uploaded %s: %s in %s (%s)", t.t.label, meter.Size(t.t.size), el.Round(time.Millisecond), meter.Rate(t.t.size, el))
	}
}

// Abandon retires the blob of a copy that failed, counting nothing.
func (t *Transfer) Abandon() { t.t.p.untrack(t.t) }

// line is the plain progress line, naming up to n uploads.
func (p *Progress) line(n int) string {
	t := p.tally.snapshot()
	el := time.Since(p.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: blobs %d uploaded, %d mounted, %d skipped; %d manifests written (%d images); %s sent (%s)",
		el.Round(time.Second), t.Uploaded.Blobs, t.Mounted.Blobs, t.Skipped.Blobs, t.Manifests, p.images,
		meter.Size(p.sent.Load()), meter.Rate(p.sent.Load(), el))
	for i, a := range p.active {
		if i == n {
			fmt.Fprintf(&b, " +%d more", len(p.active)-n)
			break
		}
		fmt.Fprintf(&b, "; %s %s/%s", a.label, meter.Size(a.n.Load()), meter.Size(a.size))
	}
	return b.String()
}

// maxBars bounds the live region.
const maxBars = 10

// draw redraws the live region: a bar per upload, then the total.
func (p *Progress) draw() {
	var lines []string
	for i, a := range p.active {
		if i == maxBars {
			break
		}
		_ = a.bar.Set64(a.n.Load())
		lines = append(lines, a.bar.String())
	}
	p.live.Draw(append(lines, p.line(0))...)
}

// clear erases the live region.
func (p *Progress) clear() {
	if p.terminal {
		p.live.Clear()
	}
}
