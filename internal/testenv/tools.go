package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RequireToolsEnv names the environment variable that turns a missing tool
// from a skipped test into a failed one. CI sets it to 1.
const RequireToolsEnv = "NIXPUSH_REQUIRE_TOOLS"

// ToolsDir is where .ci/setup installs the Go programs the tests and
// benchmarks use at pinned versions (distribution v3's registry, crane,
// oras), relative to the repository root: Tool looks there before PATH,
// so no one has to put it on PATH.
const ToolsDir = ".work/tools"

// Tool returns the path of the program name: ToolsDir/name in the
// repository when it is there, else name on PATH. When it is missing, the
// test is skipped, or fails if RequireToolsEnv is 1. Asking for a Nix
// command (nix, nix-build, …) also isolates this process's Nix
// configuration from the machine's (see nixConfig).
func Tool(t testing.TB, name string) string {
	t.Helper()
	if strings.HasPrefix(name, "nix") && name != "nixpush" {
		nixConfig(t)
	}
	p, err := lookTool(name)
	if err != nil {
		if os.Getenv(RequireToolsEnv) == "1" {
			t.Fatalf("%s is required (%s=1) but not found (bash .ci/setup installs it): %v", name, RequireToolsEnv, err)
		}
		t.Skipf("%s not found (bash .ci/setup installs it): %v", name, err)
	}
	return p
}

// lookTool finds name in ToolsDir, then on PATH.
func lookTool(name string) (string, error) {
	if root, ok := repoRoot(); ok {
		p := filepath.Join(root, ToolsDir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// repoRoot returns the directory holding go.mod, found from the working
// directory upwards.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
