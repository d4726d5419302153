package meter

import (
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// Live is a region at the foot of a terminal that is redrawn in place,
// one line per bar, so that several uploads can show at once. Whatever is
// printed while it is cleared scrolls above it. Not safe for concurrent
// use.
type Live struct {
	w     io.Writer
	width int // terminal columns, 0 if unknown
	drawn int // lines of the region on screen
}

// NewLive returns an empty live region on w, fitted to w's width when w
// is a terminal (an *os.File, or a writer in front of one that has its
// Fd, such as the CLI's redacting writer).
func NewLive(w io.Writer) *Live {
	l := &Live{w: w}
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			l.width = cols
		}
	}
	return l
}

// Draw replaces the region with lines, each trimmed to one terminal line:
// a wrapped line would throw off the cursor movements of the next redraw.
func (l *Live) Draw(lines ...string) {
	var b strings.Builder
	if l.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", l.drawn)
	}
	for _, line := range lines {
		fmt.Fprintf(&b, "\r\x1b[K%s\n", l.fit(line))
	}
	b.WriteString("\x1b[J")
	io.WriteString(l.w, b.String()) //nolint:errcheck // progress is best effort
	l.drawn = len(lines)
}

// Clear erases the region.
func (l *Live) Clear() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\x1b[%dA\x1b[J", l.drawn)
		l.drawn = 0
	}
}

func (l *Live) fit(line string) string {
	line = strings.TrimLeft(line, "\r")
	if l.width > 1 {
		if runes := []rune(line); len(runes) >= l.width {
			return string(runes[:l.width-1])
		}
	}
	return line
}
