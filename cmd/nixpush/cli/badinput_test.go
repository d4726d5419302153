package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
)

// runCapped runs nixpush like run, under a 30-second deadline and a 2 GiB
// address-space limit (ulimit -v), so that a command that reads without
// bound dies at once instead of taking the machine's memory.
func runCapped(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `ulimit -v 2097152 && exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("nixpush %s: still running after 30s", strings.Join(args, " "))
	}
	return result{out.String(), errb.String(), err}
}

// TestUntrustedFiles: every command that reads an image description, a
// plan or a .attrs.json refuses a device, a FIFO, a directory and a file
// over its size limit at once, with one line naming the file, instead of
// hanging or dying with "fatal error: out of memory".
func TestUntrustedFiles(t *testing.T) {
	bin := buildNixpush(t)
	fifo, big := testenv.UntrustedFiles(t, 1<<30) // over every limit
	dir := t.TempDir()
	files := []struct{ name, file, want string }{
		{"device", "/dev/zero", "/dev/zero: not a regular file (a character device)"},
		{"FIFO", fifo, fifo + ": not a regular file (a FIFO)"},
		{"directory", dir, dir + ": not a regular file (a directory)"},
		{"oversize", big, big + ": file too large: larger than"},
	}
	commands := [][]string{
		{"inspect", "nix:FILE"},
		{"verify", "FILE"},
		{"copy", "nix:FILE", "oci:" + filepath.Join(t.TempDir(), "oci") + ":x"},
		{"push", "--plan", "FILE"},
		{"push", "FILE", "docker://127.0.0.1:9/x:y"},
		{"layer", "--attrs", "FILE"},
		{"image", "--attrs", "FILE"},
		{"write-config", "--attrs", "FILE"},
		{"write-plan", "--attrs", "FILE"},
		{"write-app", "--attrs", "FILE"},
	}
	for _, c := range commands {
		for _, file := range files {
			args := make([]string, len(c))
			for i, a := range c {
				args[i] = strings.Replace(a, "FILE", file.file, 1)
			}
			t.Run(strings.Join(c, " ")+" "+file.name, func(t *testing.T) {
				r := runCapped(t, bin, args...)
				if r.err == nil {
					t.Fatalf("nixpush %s succeeded", strings.Join(args, " "))
				}
				if !strings.Contains(r.stderr, file.want) || strings.Contains(r.stderr, "goroutine ") {
					t.Errorf("nixpush %s: stderr does not say %q, or has a goroutine dump:\n%.2000s", strings.Join(args, " "), file.want, r.stderr)
				}
			})
		}
	}
}
