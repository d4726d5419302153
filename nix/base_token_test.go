package nix_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// TestPullImageTokenAuth: a registry that takes bearer tokens only (the
// Docker Hub flow: 401, then a token from the realm for the repository's
// scope): nixpush lock and pullImage in the sandbox get through with the
// credentials from the environment, and nothing gets through without
// them.
func TestPullImageTokenAuth(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t, testenv.WithTokenAuth("hub-user", "hub-token-secret"))
	authFile := reg.AuthFile(t)
	layout := filepath.Join(t.TempDir(), "layout")
	run(t, nil, testenv.Tool(t, "umoci"), "init", "--layout", layout)
	umociImage(t, e, layout, "amd64", "amd64")
	ref := reg.Host + "/private/base:amd64"
	testenv.Skopeo(t, "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile", authFile, "oci:"+layout+":amd64", "docker://"+ref)

	home := []string{"HOME=" + t.TempDir(), "REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR="}
	if _, err := e.run(t, home, "lock", "--tls-verify=false", "--arch", "amd64", "docker://"+ref); err == nil {
		t.Fatal("lock without credentials succeeded; the registry must refuse it")
	}
	lockFile, lock := e.lock(t, append(home, "REGISTRY_AUTH_FILE="+authFile), "--tls-verify=false", "--arch", "amd64", "docker://"+ref)
	auth, err := os.ReadFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	file := e.baseExpr(t, fmt.Sprintf(`np.pullImageFromLockWith %q { tlsVerify = false; }`, lockFile), "app")
	t.Setenv("NIXPUSH_AUTH", "")
	if _, err := e.build(t, file, "base"); err == nil || !strings.Contains(err.Error(), "pulling "+reg.Host+"/private/base@"+lock["imageDigest"]) ||
		!strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("pullImage without credentials: %v; want it refused (authentication required), naming the reference", err)
	}
	t.Setenv("NIXPUSH_AUTH", string(auth))
	pulled, err := e.build(t, file, "base")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pulled, "index.json")); err != nil {
		t.Error(err)
	}
	var bearer bool
	for _, q := range reg.Requests(0) {
		if strings.HasPrefix(q.Path, "/v2/private/base/blobs/") && q.Status == 200 {
			bearer = true
		}
	}
	if !bearer {
		t.Errorf("no blob was served:\n%v", reg.Requests(0))
	}
}
