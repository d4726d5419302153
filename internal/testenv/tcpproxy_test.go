package testenv

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer answers every connection by reading the request's length
// (8 bytes, big-endian) and that many bytes, then writing back the
// server's reply, and closing.
func echoServer(t *testing.T, reply []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var n [8]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					return
				}
				size := int64(0)
				for _, b := range n {
					size = size<<8 | int64(b)
				}
				if _, err := io.CopyN(io.Discard, c, size); err != nil {
					return
				}
				c.Write(reply) //nolint:errcheck // the client checks what it got
			}()
		}
	}()
	return l.Addr().String()
}

// exchange sends a request of size bytes through addr and returns the
// reply.
func exchange(t *testing.T, addr string, size int64) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer c.Close()
	var n [8]byte
	for i := range n {
		n[i] = byte(size >> (56 - 8*i))
	}
	if _, err := c.Write(n[:]); err != nil {
		t.Error(err)
		return nil
	}
	if _, err := io.CopyN(c, bytes.NewReader(make([]byte, size)), size); err != nil {
		t.Error(err)
		return nil
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Error(err)
	}
	return got
}

// TestTCPProxyRate: responses cross a rate-limited proxy intact and no
// faster than its rate, however many connections share it, while
// requests pass at full speed.
func TestTCPProxyRate(t *testing.T) {
	const rate = 4 << 20 // bytes per second
	reply := make([]byte, 1<<20)
	for i := range reply {
		reply[i] = byte(rand.Uint32())
	}
	upstream := echoServer(t, reply)
	proxy := StartTCPProxy(t, upstream, TCPProxy{Rate: rate})
	// The line's time for n replies of 1 MiB, less a little for timer
	// granularity.
	least := func(n int) time.Duration { return time.Duration(n) * time.Second / 4 * 95 / 100 }

	t.Run("one connection", func(t *testing.T) {
		t0 := time.Now()
		got := exchange(t, proxy, 0)
		d := time.Since(t0)
		if !bytes.Equal(got, reply) {
			t.Fatalf("got %d bytes, not the %d-byte reply", len(got), len(reply))
		}
		if d < least(1) {
			t.Errorf("1 MiB at 4 MiB/s took %v, less than %v", d, least(1))
		}
		if d > 5*time.Second {
			t.Errorf("1 MiB at 4 MiB/s took %v", d)
		}
	})
	t.Run("connections share the rate", func(t *testing.T) {
		const conns = 3
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got := exchange(t, proxy, 0); !bytes.Equal(got, reply) {
					t.Errorf("got %d bytes, not the %d-byte reply", len(got), len(reply))
				}
			}()
		}
		wg.Wait()
		if d := time.Since(t0); d < least(conns) {
			t.Errorf("%d replies of 1 MiB at 4 MiB/s took %v, less than %v: the connections did not share the line", conns, d, least(conns))
		}
	})
	t.Run("requests at full speed", func(t *testing.T) {
		// 64 MiB would take 16 s at the response rate.
		t0 := time.Now()
		got := exchange(t, proxy, 64<<20)
		d := time.Since(t0)
		if !bytes.Equal(got, reply) {
			t.Fatalf("got %d bytes, not the %d-byte reply", len(got), len(reply))
		}
		if d > least(1)+4*time.Second {
			t.Errorf("a 64 MiB request and a 1 MiB reply took %v: the request was slowed down", d)
		}
	})
	t.Run("a fast line keeps its rate", func(t *testing.T) {
		// At 1 Gbit/s a chunk takes the line for microseconds, less than
		// a sleeping goroutine may wake late: the line must not charge
		// that lateness (it once passed 40% of its rate to one connection).
		const fastRate = 125_000_000
		big := make([]byte, 32<<20)
		line := time.Duration(len(big)) * time.Second / fastRate
		gig := StartTCPProxy(t, echoServer(t, big), TCPProxy{Rate: fastRate})
		t0 := time.Now()
		got := exchange(t, gig, 0)
		d := time.Since(t0)
		if len(got) != len(big) {
			t.Fatalf("got %d bytes, not the %d-byte reply", len(got), len(big))
		}
		if d < line*95/100 || d > line*3/2 {
			t.Errorf("32 MiB at 1 Gbit/s took %v, not about %v", d, line)
		}
	})
	t.Run("no rate", func(t *testing.T) {
		fast := StartTCPProxy(t, upstream, TCPProxy{})
		t0 := time.Now()
		got := exchange(t, fast, 0)
		if !bytes.Equal(got, reply) {
			t.Fatalf("got %d bytes, not the %d-byte reply", len(got), len(reply))
		}
		if d := time.Since(t0); d >= least(1) {
			t.Errorf("1 MiB without a rate took %v, as long as at 4 MiB/s", d)
		}
	})
}

// TestTCPProxyUpRate: requests cross a proxy with an upload rate intact
// and no faster than that rate, connections sharing it, while responses
// pass at full speed.
func TestTCPProxyUpRate(t *testing.T) {
	const rate = 4 << 20 // bytes per second
	reply := make([]byte, 1<<20)
	upstream := echoServer(t, reply)
	proxy := StartTCPProxy(t, upstream, TCPProxy{UpRate: rate})
	least := func(n int) time.Duration { return time.Duration(n) * time.Second / 4 * 95 / 100 }

	t.Run("requests share the rate", func(t *testing.T) {
		const conns = 2
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got := exchange(t, proxy, 1<<20); len(got) != len(reply) {
					t.Errorf("got %d bytes, not the %d-byte reply", len(got), len(reply))
				}
			}()
		}
		wg.Wait()
		if d := time.Since(t0); d < least(conns) {
			t.Errorf("%d requests of 1 MiB at 4 MiB/s took %v, less than %v", conns, d, least(conns))
		}
	})
	t.Run("responses at full speed", func(t *testing.T) {
		big := make([]byte, 64<<20)
		fast := StartTCPProxy(t, echoServer(t, big), TCPProxy{UpRate: rate})
		t0 := time.Now()
		if got := exchange(t, fast, 0); len(got) != len(big) {
			t.Fatalf("got %d bytes, not the %d-byte reply", len(got), len(big))
		}
		if d := time.Since(t0); d > 4*time.Second {
			t.Errorf("a 64 MiB reply took %v: the response was slowed down (16 s at the upload rate)", d)
		}
	})
}
