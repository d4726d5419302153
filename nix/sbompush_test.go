package nix_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers/description"
)

// TestSBOMPush pushes the Nix-built layered example with nixpush copy to
// docker-registry 2.8 and to distribution v3, neither of which has the
// referrers API, and checks with oras: the SBOM is a referrer of the
// pushed manifest (artifactType application/spdx+json, the digest
// nixpush inspect names), its blob is the store file, and the fallback
// tag sha256-<hex> lists it; a referrer oras attached before is kept (the
// index is merged); a re-push writes nothing; push --plan attaches it too;
// --no-sbom attaches none.
func TestSBOMPush(t *testing.T) {
	e := setup(t)
	oras := testenv.Tool(t, "oras")
	out := e.example(t, "layered")
	img, err := description.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sbomFile, err := os.ReadFile(img.SBOM.Path)
	if err != nil {
		t.Fatal(err)
	}
	nixpush := filepath.Join(e.nixpush, "bin", "nixpush")
	var info struct {
		ManifestDigest digest.Digest `json:"manifestDigest"`
		SBOM           struct {
			Digest   digest.Digest `json:"digest"`
			Referrer digest.Digest `json:"referrer"`
		} `json:"sbom"`
	}
	if err := json.Unmarshal(runOK(t, nixpush, "inspect", "--json", "nix:"+out), &info); err != nil {
		t.Fatal(err)
	}
	if info.SBOM.Digest != img.SBOM.Digest || info.SBOM.Referrer == "" {
		t.Fatalf("inspect: sbom %+v, want digest %s and a referrer", info.SBOM, img.SBOM.Digest)
	}

	for _, impl := range []testenv.Implementation{testenv.DockerRegistry, testenv.Distribution} {
		t.Run(string(impl), func(t *testing.T) {
			reg := testenv.StartRegistry(t, testenv.WithImplementation(impl))
			push := func(ref string, flags ...string) string {
				args := append([]string{"copy", "--dest-tls-verify=false"}, flags...)
				return string(runOK(t, nixpush, append(args, "nix:"+out, "docker://"+ref)...))
			}
			discover := func(ref string) []ocispec.Descriptor {
				var d struct{ Referrers []ocispec.Descriptor }
				if err := json.Unmarshal(runOK(t, oras, "discover", "--plain-http", "--format", "json", ref), &d); err != nil {
					t.Fatal(err)
				}
				return d.Referrers
			}

			// A referrer attached by oras before nixpush pushes the SBOM.
			app := reg.Host + "/app:v1"
			push(app, "--no-sbom")
			if refs := discover(app); len(refs) != 0 {
				t.Fatalf("--no-sbom: referrers %+v", refs)
			}
			note := filepath.Join(t.TempDir(), "note.txt")
			if err := os.WriteFile(note, []byte("reviewed\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			runOKIn(t, filepath.Dir(note), oras, "attach", "--plain-http", "--artifact-type", "application/vnd.example.note", app, "note.txt")

			push(app)
			refs := discover(app)
			var sbomRef *ocispec.Descriptor
			types := map[string]bool{}
			for i, r := range refs {
				types[r.ArtifactType] = true
				if r.ArtifactType == "application/spdx+json" {
					sbomRef = &refs[i]
				}
			}
			if len(refs) != 2 || !types["application/vnd.example.note"] || sbomRef == nil {
				t.Fatalf("oras discover: %+v; want the note and the SBOM", refs)
			}
			if sbomRef.Digest != info.SBOM.Referrer {
				t.Errorf("SBOM referrer %s, nixpush inspect says %s", sbomRef.Digest, info.SBOM.Referrer)
			}
			var art ocispec.Manifest
			if err := json.Unmarshal(runOK(t, oras, "manifest", "fetch", "--plain-http", reg.Host+"/app@"+sbomRef.Digest.String()), &art); err != nil {
				t.Fatal(err)
			}
			if art.Subject == nil || art.Subject.Digest != info.ManifestDigest || art.ArtifactType != "application/spdx+json" ||
				art.Config.MediaType != ocispec.MediaTypeEmptyJSON || len(art.Layers) != 1 || art.Layers[0].Digest != img.SBOM.Digest {
				t.Errorf("referrer manifest %+v", art)
			}
			blob := runOK(t, oras, "blob", "fetch", "--plain-http", "--output", "-", reg.Host+"/app@"+img.SBOM.Digest.String())
			if !bytes.Equal(blob, sbomFile) {
				t.Errorf("the SBOM blob (%d bytes) is not the store file (%d bytes)", len(blob), len(sbomFile))
			}
			var idx ocispec.Index
			tag := reg.Host + "/app:sha256-" + info.ManifestDigest.Encoded()
			if err := json.Unmarshal(runOK(t, oras, "manifest", "fetch", "--plain-http", tag), &idx); err != nil {
				t.Fatal(err)
			}
			if len(idx.Manifests) != 2 {
				t.Errorf("fallback tag %s lists %+v; want the note and the SBOM", tag, idx.Manifests)
			}

			// A re-push writes nothing.
			mark := reg.Mark()
			if summary := push(app); !strings.Contains(summary, info.ManifestDigest.String()) {
				t.Errorf("re-push printed %q", summary)
			}
			reqs := reg.Requests(mark)
			for _, q := range reqs {
				if q.IsBlobWrite() || q.IsManifestWrite() {
					t.Errorf("re-push wrote: %s", q)
				}
			}
			// GET /v2/ and HEAD of the tag, then the referrers API (404
			// here) and the fallback tag, with no ping of its own.
			if len(reqs) > 4 {
				t.Errorf("re-push made %d requests, want at most 4: %v", len(reqs), reqs)
			}

			// nixpush push --plan attaches it too.
			plan, err := json.Marshal(map[string]any{"images": []any{map[string]any{
				"image": out, "destinations": []string{"docker://" + reg.Host + "/planned:v1"},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			planFile := filepath.Join(t.TempDir(), "plan.json")
			if err := os.WriteFile(planFile, plan, 0o644); err != nil {
				t.Fatal(err)
			}
			runOK(t, nixpush, "push", "-q", "--dest-tls-verify=false", "--plan", planFile)
			if refs := discover(reg.Host + "/planned:v1"); len(refs) != 1 || refs[0].Digest != info.SBOM.Referrer {
				t.Errorf("push --plan: referrers %+v, want %s", refs, info.SBOM.Referrer)
			}

			// --no-sbom on a new repository: no referrer, no fallback tag.
			bare := reg.Host + "/bare:v1"
			push(bare, "--no-sbom")
			if refs := discover(bare); len(refs) != 0 {
				t.Errorf("--no-sbom: referrers %+v", refs)
			}
		})
	}
}

// runOK runs a program and returns its standard output; it fails the test
// with its standard error otherwise.
func runOK(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	return runOKIn(t, "", name, args...)
}

func runOKIn(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return b
}
