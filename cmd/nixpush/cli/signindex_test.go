package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// TestSignIndex pushes an index with a sigstore key: the index's tag and
// each of its images (by digest) pass a policy requiring the key, not
// another key; a re-push writes no manifest and no signature.
func TestSignIndex(t *testing.T) {
	testenv.RequireNix(t)
	reg := testenv.StartRegistry(t)
	bin := buildNixpush(t)
	_, _, a, _, _, _ := twoBuilds(t)
	arm := *a.Image
	arm.Architecture, arm.Variant = "arm64", "v8"
	idx, built := storeIndex(t, "signed", a.Image, &arm)
	keys, passFile := signKeys(t, bin)
	sign := []string{"--dest-tls-verify=false", "--sign-by-sigstore-private-key", filepath.Join(keys, "release.private"), "--sign-passphrase-file", passFile}
	dest := "docker://" + reg.Host + "/signed-index:v1"

	r := run(t, bin, nil, append([]string{"copy", "nix:" + idx, dest}, sign...)...)
	if r.err != nil {
		t.Fatalf("signed copy of an index: %v\n%s", r.err, r.stderr)
	}
	checkNoPassphrase(t, r)
	if got := lastLine(r.stdout); got != built.Digest.String() {
		t.Fatalf("copy printed %q, want the index digest %s", got, built.Digest)
	}
	withKey := sigstorePolicy(t, reg.Host, filepath.Join(keys, "release.pub"))
	refs := []string{reg.Host + "/signed-index:v1"}
	for _, img := range built.Images {
		refs = append(refs, reg.Host+"/signed-index@"+img.ManifestDigest.String())
	}
	for _, ref := range refs {
		if err := withKey(ref); err != nil {
			t.Errorf("the policy with the signing key refused %s: %v", ref, err)
		}
	}
	if err := sigstorePolicy(t, reg.Host, filepath.Join(keys, "other.pub"))(refs[0]); err == nil {
		t.Error("the policy accepted the index with another key")
	}

	mark := reg.Mark()
	r = run(t, bin, nil, append([]string{"copy", "nix:" + idx, dest}, sign...)...)
	if r.err != nil {
		t.Fatalf("signed re-copy: %v\n%s", r.err, r.stderr)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() || q.IsBlobWrite() {
			t.Errorf("re-push wrote: %s", q)
		}
	}
	if !strings.Contains(r.stderr, "0 written, 1 tags already signed") {
		t.Errorf("summary does not say the index tag was signed already:\n%s", r.stderr)
	}
}
