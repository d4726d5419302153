package nix_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// TestBaseImageBadInput: each bad pullImage, fromImage or lock input fails
// with a message naming what is wrong and the reference.
func TestBaseImageBadInput(t *testing.T) {
	e := setup(t)
	reg := testenv.StartRegistry(t)
	b := makeBase(t, e, reg)
	_, lock := e.lock(t, nil, "--tls-verify=false", "--arch", "amd64", "docker://"+b.repo+":multi")
	armLock, _ := e.lock(t, nil, "--tls-verify=false", "--arch", "arm64", "docker://"+b.repo+":multi")
	absent := "sha256:" + strings.Repeat("0", 64)
	pull := func(name, dgst, sha, extra string) string {
		return fmt.Sprintf(`np.pullImage { imageName = %q; imageDigest = %q; sha256 = %q; tlsVerify = false; %s }`, name, dgst, sha, extra)
	}
	for _, tc := range []struct {
		name, pull, attr string
		want             []string
	}{
		{"absent digest", pull(b.repo, absent, lock["sha256"], ""), "base",
			[]string{"pulling " + b.repo + "@" + absent, "manifest unknown"}},
		{"malformed digest", pull(b.repo, "sha256:abc", lock["sha256"], ""), "base",
			[]string{"pullImage " + b.repo + ": imageDigest: \"sha256:abc\" is not a digest"}},
		{"unreachable registry", pull("127.0.0.1:1/base", b.index.String(), lock["sha256"], ""), "base",
			[]string{"pulling 127.0.0.1:1/base@" + b.index.String(), "connection refused"}},
		{"missing platform", pull(b.repo, b.index.String(), lock["sha256"], `arch = "s390x";`), "base",
			[]string{"pulling " + b.repo + "@" + b.index.String(), "no image for the platform linux/s390x"}},
		{"wrong sha256", pull(b.repo, b.index.String(), "sha256-"+strings.Repeat("A", 43)+"=", ""), "base",
			[]string{"hash mismatch in fixed-output derivation", "-image-base-" + b.index.Encoded()[:12]}},
		{"base of another architecture", fmt.Sprintf(`np.pullImageFromLockWith %q { tlsVerify = false; }`, armLock), "image",
			[]string{"the base image is linux/arm64, the image linux/amd64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.build(t, e.baseExpr(t, tc.pull, "app"), tc.attr)
			if err == nil {
				t.Fatal("built; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	t.Run("lock of a missing tag", func(t *testing.T) {
		_, err := e.run(t, nil, "lock", "--tls-verify=false", "docker://"+b.repo+":nosuchtag")
		if err == nil || !strings.Contains(err.Error(), "resolving "+b.repo+":nosuchtag") {
			t.Errorf("err = %v; want it to name %s:nosuchtag", err, b.repo)
		}
	})
}
