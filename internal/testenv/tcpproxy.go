package testenv

import (
	"io"
	"net"
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
			go p.forward(c, upstream)
		}
	}()
	return l.Addr().String()
}

func (p TCPProxy) forward(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go io.Copy(u, c) //nolint:errcheck // ends with the connection
	if p.Delay == 0 {
		io.Copy(c, u) //nolint:errcheck // ends with the connection
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			time.Sleep(p.Delay)
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
