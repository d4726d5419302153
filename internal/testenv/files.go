package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// UntrustedFiles makes, in a new temporary directory, the files a reader of
// untrusted input must refuse at once: a FIFO (opening it for reading
// would block) and a sparse regular file of size bytes (no disk used),
// larger than the reader's limit. /dev/zero, a device that never ends,
// needs no making.
func UntrustedFiles(t testing.TB, size int64) (fifo, big string) {
	t.Helper()
	dir := t.TempDir()
	fifo = filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big = filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, size); err != nil {
		t.Fatal(err)
	}
	return fifo, big
}
