package testenv

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Skopeo runs skopeo with a private HOME and returns its stdout; on failure
// the test fails with skopeo's stderr. Pass registry credentials in an auth
// file (--authfile), never in args.
func Skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t, "skopeo"), args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return out
}
