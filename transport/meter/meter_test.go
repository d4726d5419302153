package meter

import (
	"strings"
	"testing"
	"time"
)

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Rate(10<<20, 2*time.Second); got != "5.0 MiB/s" {
		t.Errorf("Rate = %q", got)
	}
	if got := Rate(1, 0); got != "-" {
		t.Errorf("Rate over 0s = %q", got)
	}
}

func TestNewBar(t *testing.T) {
	bar := NewBar(4<<20, "layer 1/2 hello")
	if err := bar.Set64(2 << 20); err != nil {
		t.Fatal(err)
	}
	s := bar.String()
	if !strings.Contains(s, "layer 1/2 hello") || !strings.Contains(s, "50%") {
		t.Fatalf("bar renders %q", s)
	}
}

// TestLive: each redraw first moves up over the lines the last one drew,
// a line wider than the terminal is cut to fit, and Clear erases exactly
// what is on screen.
func TestLive(t *testing.T) {
	var b strings.Builder
	l := &Live{w: &b, width: 10}
	l.Draw("\rone", "two is too long")
	if want := "\r\x1b[Kone\n\r\x1b[Ktwo is to\n\x1b[J"; b.String() != want {
		t.Errorf("first draw %q, want %q", b.String(), want)
	}
	b.Reset()
	l.Draw("total")
	if want := "\x1b[2A\r\x1b[Ktotal\n\x1b[J"; b.String() != want {
		t.Errorf("redraw %q, want %q", b.String(), want)
	}
	b.Reset()
	l.Clear()
	l.Clear()
	if want := "\x1b[1A\x1b[J"; b.String() != want {
		t.Errorf("clear %q, want %q", b.String(), want)
	}
}
