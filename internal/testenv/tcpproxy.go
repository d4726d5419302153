package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TCPProxy says how StartTCPProxy treats connections.
type TCPProxy struct {
	// DropFirst closes the first DropFirst connections as soon as they
	// are accepted: a registry that cannot be reached for a moment.
	DropFirst int32
	// Delay holds back each chunk of every response by this long: a
	// registry that far away.
	Delay time.Duration
	// Rate, when above 0, limits responses (upstream to client) to Rate
	// bytes per second in all, shared by every connection as one link
	// is: 12_500_000 is a 100 Mbit/s line. Requests pass at full speed
	// unless UpRate is set.
	Rate int64
	// UpRate, when above 0, limits requests (client to upstream) the
	// same way, on a line of their own: an upload over a link of that
	// rate (125_000_000 is 1 Gbit/s).
	UpRate int64
	// Accepted, when set, counts the connections accepted (dropped ones
	// included).
	Accepted *atomic.Int32
}

// StartTCPProxy forwards TCP connections on 127.0.0.1 to upstream
// ("HOST:PORT") as p says, below HTTP, so TLS and keep-alive pass through
// untouched. It returns the proxy's "127.0.0.1:PORT" and stops when the
// test ends.
func StartTCPProxy(t testing.TB, upstream string, p TCPProxy) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := p.Accepted
	if accepted == nil {
		accepted = new(atomic.Int32)
	}
	var down, up *link
	if p.Rate > 0 {
		down = newLink(p.Rate)
	}
	if p.UpRate > 0 {
		up = newLink(p.UpRate)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) <= p.DropFirst {
				c.Close()
				continue
			}
			go p.forward(c, upstream, down, up)
		}
	}()
	return l.Addr().String()
}

func (p TCPProxy) forward(c net.Conn, upstream string, down, up *link) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go pump(u, c, 0, up)
	pump(c, u, p.Delay, down)
}

// pump copies src to dst until either ends, holding back each chunk by
// delay and passing it through line when there is one.
func pump(dst, src net.Conn, delay time.Duration, line *link) {
	if delay == 0 && line == nil {
		io.Copy(dst, src) //nolint:errcheck // ends with the connection
		return
	}
	buf := make([]byte, 64<<10)
	if line != nil {
		buf = make([]byte, line.chunk())
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(delay)
			if line != nil {
				line.send(n)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// link is a line of a fixed rate shared by connections: each chunk takes
// its turn and occupies the line for len/rate, so that however many
// connections send, no more than rate bytes pass per second.
type link struct {
	rate int64 // bytes per second
	mu   sync.Mutex
	free time.Time // when the line has sent everything queued so far
}

func newLink(rate int64) *link { return &link{rate: rate} }

// chunk is how many bytes a connection passes at a time: about 2 ms of
// the line, so that connections sharing it take turns finely, yet each
// sleep is long next to how late a sleeping goroutine wakes.
func (l *link) chunk() int {
	return int(min(max(l.rate/500, 16<<10), 1<<20))
}

// slack is how long after the line fell free a sender may come back and
// still go on back to back, as on a busy line: a goroutine wakes from
// its sleep up to about a millisecond late, and charging that to the
// line would make it slower than its rate.
const slack = 2 * time.Millisecond

// send waits until n bytes would have crossed the line behind what other
// connections queued before them.
func (l *link) send(n int) {
	l.mu.Lock()
	now := time.Now()
	start := l.free
	if now.Sub(start) > slack {
		start = now
	}
	l.free = start.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
	done := l.free
	l.mu.Unlock()
	time.Sleep(time.Until(done))
}
