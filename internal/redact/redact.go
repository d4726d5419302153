package redact

import (
	"io"
	"regexp"
	"strings"
)

// Marker replaces a removed query string or user information.
const Marker = "REDACTED"

// urlPattern matches a URL or a transport reference with a scheme
// (https://…, docker://…) up to a space, a quote, an angle bracket or a
// control character: how Go's errors and containers/image's messages
// delimit them.
var urlPattern = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>\x00-\x1f\x7f]+`)

// schemePattern matches a URL scheme.
var schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// digestSuffix matches what follows the '@' of a reference by digest
// (app@sha256:…), which is not user information.
var digestSuffix = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}`)

// String returns s with the query string and user information of every
// URL in it replaced by Marker.
func String(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, Reference)
}

// Reference redacts a URL or an image reference written with or without a
// scheme ("user:pass@host/repo:tag"): everything up to its last '@' that
// does not start a digest (user information, even one holding '/' or
// '?'), and anything from a '?' or '#' on.
func Reference(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok && schemePattern.MatchString(scheme) {
		return scheme + "://" + Reference(rest)
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' && !digestSuffix.MatchString(s[i+1:]) {
			s = Marker + s[i:]
			break
		}
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i+1] + Marker
	}
	return s
}

// Writer returns a writer that redacts each write to w. Every write must
// hold whole URLs, as fmt.Fprintf's single write of a line does. When w
// has a file descriptor (a terminal), so does the writer, for code that
// asks the terminal's width.
func Writer(w io.Writer) io.Writer {
	if f, ok := w.(fder); ok {
		return fdWriter{writer{w}, f}
	}
	return writer{w}
}

type fder interface{ Fd() uintptr }

type writer struct{ w io.Writer }

type fdWriter struct {
	writer
	f fder
}

func (w fdWriter) Fd() uintptr { return w.f.Fd() }

func (r writer) Write(p []byte) (int, error) {
	s := String(string(p))
	if _, err := io.WriteString(r.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
