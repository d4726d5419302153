package registry

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressViews(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		want     []string
	}{
		{"terminal", true, []string{"layer 1/2 app  50%", "(5.0/10 KiB", "layer 1/2 app", "\x1b[", "1 uploaded, 2 mounted, 3 skipped"}},
		{"plain", false, []string{"1 uploaded, 2 mounted, 3 skipped; 4 manifests written (5 images)", "layer 1/2 app 5.0 KiB/10.0 KiB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			ta := &tally{start: time.Now()}
			for what, n := range map[Outcome]int{Uploaded: 1, Mounted: 2, Skipped: 3, ManifestWritten: 4} {
				for range n {
					ta.count(what, 10)
				}
			}
			p := newProgress(&options{progress: &buf, progressTerminal: tc.terminal, progressLineInterval: 10 * time.Millisecond}, 5, ta)
			tr := p.track("layer 1/2 app", 10<<10, strings.NewReader(strings.Repeat("x", 5<<10)))
			if _, err := tr.Read(make([]byte, 5<<10)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			p.Note("a note")
			p.untrack(tr)
			p.Close()
			out := buf.String()
			for _, w := range append(tc.want, "a note\n") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%q", w, out)
				}
			}
			if !tc.terminal && strings.Contains(out, "\x1b") {
				t.Errorf("escape sequences in plain output:\n%q", out)
			}
		})
	}
	// No writer: nothing happens, nothing blocks.
	p := newProgress(&options{}, 1, &tally{})
	p.Note("x")
	p.untrack(p.track("x", 1, strings.NewReader("x")))
	p.Close()
}
