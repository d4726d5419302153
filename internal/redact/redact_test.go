package redact

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{
			`Patch "https://r.example/v2/app/blobs/uploads/0f3c?_state=c2VjcmV0&x=1": EOF`,
			`Patch "https://r.example/v2/app/blobs/uploads/0f3c?REDACTED": EOF`,
		},
		{
			"blob at https://bucket.s3.amazonaws.com/data?X-Amz-Signature=abc#frag failed",
			"blob at https://bucket.s3.amazonaws.com/data?REDACTED failed",
		},
		{
			`image reference "docker://ci:s3cret@registry.example.com/app:v1": invalid`,
			`image reference "docker://REDACTED@registry.example.com/app:v1": invalid`,
		},
		{
			"docker://ci:pa/ss?w@registry.example.com/app:v1",
			"docker://REDACTED@registry.example.com/app:v1",
		},
		{
			"docker://registry.example.com/app@sha256:" + strings.Repeat("ab", 32) + " ok",
			"docker://registry.example.com/app@sha256:" + strings.Repeat("ab", 32) + " ok",
		},
		{"https://u:p@h/x\x1b[K\n", "https://REDACTED@h/x\x1b[K\n"},
		{"no url here, just host:5000/app:v1", "no url here, just host:5000/app:v1"},
		{"two: http://a/?q=1 and http://b/?q=2", "two: http://a/?REDACTED and http://b/?REDACTED"},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestReference(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ci:s3cret@registry.example.com/app:v1", "REDACTED@registry.example.com/app:v1"},
		{"docker://ci:s3cret@registry.example.com/app:v1", "docker://REDACTED@registry.example.com/app:v1"},
		{"registry.example.com/app:v1", "registry.example.com/app:v1"},
		{"app@sha256:" + strings.Repeat("0", 64), "app@sha256:" + strings.Repeat("0", 64)},
		{"host/app?x=1", "host/app?REDACTED"},
	} {
		if got := Reference(tc.in); got != tc.want {
			t.Errorf("Reference(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	in := "retrying PUT https://h/v2/x/blobs/uploads/1?_state=SECRET\n"
	n, err := Writer(&b).Write([]byte(in))
	if err != nil || n != len(in) {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(in))
	}
	if got, want := b.String(), "retrying PUT https://h/v2/x/blobs/uploads/1?REDACTED\n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// TestWriterKeepsFd: a redacting writer on a file still has its
// descriptor, which terminal code asks for the width.
func TestWriterKeepsFd(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, ok := Writer(f).(interface{ Fd() uintptr })
	if !ok || w.Fd() != f.Fd() {
		t.Errorf("Writer(file) has no Fd, or another one")
	}
	if _, ok := Writer(&bytes.Buffer{}).(interface{ Fd() uintptr }); ok {
		t.Errorf("Writer(buffer) claims an Fd")
	}
}
