package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/layers/sbom"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// sbomImage describes a one-layer image in a fixture store under root,
// with an SBOM made by layers/sbom, a file in the store as the builder
// writes it.
func sbomImage(t *testing.T, root string) (*transport.Built, string) {
	t.Helper()
	opts := []layers.Option{layers.WithRoot(root)}
	app := fixturePath(t, root, "00000000000000000000000000000sbm-app-1.0", map[string]string{"bin/app": "app\n"})
	img := transporttest.Describe(t, "app", ociConfig(), []transporttest.Layer{{Paths: []layers.Path{app}}}, opts...)
	p := attachSBOM(t, root, img, "00000000000000000000000000000sbm-app.json-sbom")
	built, err := transport.Build(img, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return built, p
}

// attachSBOM writes img's SBOM (layers/sbom) as the store path
// /nix/store/name in the fixture store under root, as the builder does,
// and records it in img. It returns the file.
func attachSBOM(t *testing.T, root string, img *description.Image, name string) string {
	t.Helper()
	_, m, err := img.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sbom.SPDX(sbom.Input{Image: img, Manifest: m.Digest})
	if err != nil {
		t.Fatal(err)
	}
	p := layers.StoreDir + "/" + name
	if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
		t.Fatal(err)
	}
	img.SBOM = &description.Attachment{Path: p, MediaType: description.MediaTypeSPDX, Digest: digest.FromBytes(b), Size: int64(len(b))}
	img.Version = img.NeededVersion()
	if err := img.Validate(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, p)
}

// getJSON GETs url from reg into v; it returns the status.
func getJSON(t *testing.T, reg *testenv.Registry, url, accept string, v any) int {
	t.Helper()
	c, err := reg.Client()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	if reg.User != "" {
		req.SetBasicAuth(reg.User, reg.Password)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// TestReferrersAPI pushes an image with an SBOM to go-containerregistry's
// registry, which has the referrers API: the registry lists the SBOM's
// artifact manifest as a referrer of the image's manifest, and no
// fallback tag is written. A re-push only asks; WithReferrers(false)
// attaches nothing.
func TestReferrersAPI(t *testing.T) {
	reg := startInProcess(t, testenv.WithReferrersAPI())
	built, _ := sbomImage(t, t.TempDir())
	refs, err := built.Referrers()
	if err != nil || len(refs) != 1 {
		t.Fatalf("referrers %v, %v", refs, err)
	}
	ctx := context.Background()
	push := func(repo string, opts ...registry.Option) *registry.Report {
		t.Helper()
		rep, err := registry.Push(ctx, []registry.Image{{Source: "app.json", Built: built, Destinations: []string{reg.Host + "/" + repo + ":v1"}}},
			append([]registry.Option{registry.WithTLSVerify(false)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	list := func(repo string) []ocispec.Descriptor {
		var idx ocispec.Index
		if st := getJSON(t, reg, reg.URL()+"/v2/"+repo+"/referrers/"+built.ManifestDigest.String(), ocispec.MediaTypeImageIndex, &idx); st != http.StatusOK {
			t.Fatalf("GET referrers: %d", st)
		}
		return idx.Manifests
	}

	mark := reg.Mark()
	if rep := push("app"); rep.Totals.Referrers != 1 || rep.Totals.ReferrersUnchanged != 0 {
		t.Errorf("totals %+v: want one referrer written", rep.Totals)
	}
	got := list("app")
	// (go-containerregistry's registry lists the config's media type as
	// the artifactType, not the manifest's artifactType as the spec says:
	// the manifest itself is checked.)
	if len(got) != 1 || got[0].Digest != refs[0].Digest {
		t.Errorf("referrers API lists %+v, want %s", got, refs[0].Digest)
	}
	var art ocispec.Manifest
	if st := getJSON(t, reg, reg.URL()+"/v2/app/manifests/"+refs[0].Digest.String(), ocispec.MediaTypeImageManifest, &art); st != http.StatusOK ||
		art.ArtifactType != description.MediaTypeSPDX || art.Subject == nil || art.Subject.Digest != built.ManifestDigest {
		t.Errorf("referrer manifest: %d %+v", st, art)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() && strings.Contains(q.Path, "/manifests/sha256-") {
			t.Errorf("a fallback tag was written on a registry with the referrers API: %s", q)
		}
	}

	mark = reg.Mark()
	if rep := push("app"); rep.Totals.Referrers != 0 || rep.Totals.ReferrersUnchanged != 1 {
		t.Errorf("re-push totals %+v: want the referrer unchanged", rep.Totals)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsBlobWrite() || q.IsManifestWrite() {
			t.Errorf("re-push wrote: %s", q)
		}
	}

	if rep := push("bare", registry.WithReferrers(false)); rep.Totals.Referrers+rep.Totals.ReferrersUnchanged != 0 {
		t.Errorf("WithReferrers(false): totals %+v", rep.Totals)
	}
	if got := list("bare"); len(got) != 0 {
		t.Errorf("WithReferrers(false): referrers %+v", got)
	}
}

// TestReferrersTLSAuth pushes an image with an SBOM to a registry process
// with TLS and htpasswd auth, and no referrers API: the referrers list is
// read with the same credentials and certificates as the rest of the push,
// and the fallback tag lists the SBOM.
func TestReferrersTLSAuth(t *testing.T) {
	const user, password = "nixpush", "s3cret-Pa55word"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	built, _ := sbomImage(t, t.TempDir())
	refs, err := built.Referrers()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := registry.Push(context.Background(), []registry.Image{{Source: "app.json", Built: built, Destinations: []string{reg.Host + "/app:v1"}}},
		registry.WithCredentials(user, password), registry.WithCertDir(reg.CertDir))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Referrers != 1 {
		t.Errorf("totals %+v: want one referrer written", rep.Totals)
	}
	var idx ocispec.Index
	tag := reg.URL() + "/v2/app/manifests/" + registry.FallbackTag(built.ManifestDigest)
	if st := getJSON(t, reg, tag, ocispec.MediaTypeImageIndex, &idx); st != http.StatusOK || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != refs[0].Digest {
		t.Errorf("fallback tag: %d %+v, want %s", st, idx.Manifests, refs[0].Digest)
	}
}

// TestReferrerChangedSBOM: an SBOM file changed after the build is not
// pushed; the error says so, and no referrer manifest is written.
func TestReferrerChangedSBOM(t *testing.T) {
	reg := startInProcess(t)
	built, file := sbomImage(t, t.TempDir())
	if err := os.WriteFile(file, []byte(`{"spdxVersion": "forged"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	refs, err := built.Referrers()
	if err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	_, err = registry.Push(context.Background(), []registry.Image{{Source: "app.json", Built: built, Destinations: []string{reg.Host + "/app:v1"}}},
		registry.WithTLSVerify(false), registry.WithRetry(0, 0))
	if !errors.Is(err, description.ErrAttachmentChanged) || !strings.Contains(err.Error(), built.Image.SBOM.Path) {
		t.Fatalf("push: %v; want an error naming %s", err, built.Image.SBOM.Path)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() && (strings.Contains(q.Path, refs[0].Digest.String()) || strings.Contains(q.Path, "/manifests/sha256-")) {
			t.Errorf("wrote %s", q)
		}
		if q.IsBlobWrite() && strings.Contains(q.Path, built.Image.SBOM.Digest.String()) {
			t.Errorf("wrote the changed SBOM: %s", q)
		}
	}
}

// TestFallbackTagNotIndex: a fallback tag that holds something else than
// an image index is left alone, and the push fails saying so.
func TestFallbackTagNotIndex(t *testing.T) {
	reg := startInProcess(t)
	built, _ := sbomImage(t, t.TempDir())
	ctx := context.Background()
	tag := reg.Host + "/app:" + registry.FallbackTag(built.ManifestDigest)
	if _, err := registry.Push(ctx, []registry.Image{{Source: "app.json", Built: built, Destinations: []string{tag}}},
		registry.WithTLSVerify(false), registry.WithReferrers(false)); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	_, err := registry.Push(ctx, []registry.Image{{Source: "app.json", Built: built, Destinations: []string{reg.Host + "/app:v1"}}},
		registry.WithTLSVerify(false), registry.WithRetry(0, 0))
	if err == nil || !strings.Contains(err.Error(), "not an image index") {
		t.Fatalf("push: %v; want an error saying the fallback tag is not an image index", err)
	}
	for _, q := range reg.Requests(mark) {
		if q.IsManifestWrite() && strings.Contains(q.Path, "/manifests/sha256-") {
			t.Errorf("overwrote the fallback tag: %s", q)
		}
	}
}
