package release

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

// progress is the run's one progress view: on a terminal, a live region
// with a bar per blob being uploaded and a total line; otherwise a plain
// line every interval, fit for CI logs. Notes (retries, written tags) are
// printed above the live region. A nil writer prints nothing.
type progress struct {
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

func newProgress(o *options, images int, t *tally) *progress {
	p := &progress{w: o.progress, terminal: o.progressTerminal, interval: o.progressLineInterval,
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

func (p *progress) loop() {
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

// close stops the view and erases the live region.
func (p *progress) close() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// note prints one line.
func (p *progress) note(format string, args ...any) {
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
	p     *progress
	bar   *progressbar.ProgressBar // terminal only
}

func (t *tracked) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.n.Add(int64(n))
	t.p.sent.Add(int64(n))
	return n, err
}

// track returns r counted as the upload of label.
func (p *progress) track(label string, size int64, r io.Reader) *tracked {
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
func (p *progress) untrack(t *tracked) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.active {
		if a == t {
			p.active = append(p.active[:i], p.active[i+1:]...)
			break
		}
	}
}

// line is the plain progress line, naming up to n uploads.
func (p *progress) line(n int) string {
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
func (p *progress) draw() {
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
func (p *progress) clear() {
	if p.terminal {
		p.live.Clear()
	}
}
