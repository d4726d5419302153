package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestPush pushes two images, one from arguments and one from a plan
// file, to a TLS registry with auth, and checks stdout, the report and
// that the password appears nowhere.
func TestPush(t *testing.T) {
	const user, password = "nixpush", "s3cret-Release-pw"
	reg := testenv.StartRegistry(t, testenv.WithTLSAuth(user, password))
	bin := buildNixpush(t)
	desc1, built1 := fixture(t)
	p := transporttest.AddStorePath(t, "cli-push-second", map[string]transporttest.File{
		"bin/second": {Data: "#!/bin/sh\necho second\n", Exec: true},
	})
	img2 := transporttest.Describe(t, "second", ocispec.ImageConfig{Cmd: []string{p.Path + "/bin/second"}},
		[]transporttest.Layer{{Paths: []layers.Path{p}}})
	built2, err := transport.Build(img2)
	if err != nil {
		t.Fatal(err)
	}
	desc2 := transporttest.Write(t, img2)
	dir := t.TempDir()
	plan, _ := json.Marshal(registry.Plan{Images: []registry.Image{{
		Source: desc2, Destinations: []string{"docker://" + reg.Host + "/second:v1", "docker://" + reg.Host + "/other/second:v1"},
	}}})
	planFile := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planFile, plan, 0o644); err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(dir, "report.json")
	auth := reg.AuthFile(t)
	certs := "--dest-cert-dir=" + reg.CertDir

	t.Run("wrong password fails fast", func(t *testing.T) {
		r := run(t, bin, nil, "push", certs, "--dest-creds", user+":wrong-"+password, "--retry-delay=10ms",
			"nix:"+desc1, "docker://"+reg.Host+"/first:v1")
		if r.err == nil {
			t.Fatalf("push succeeded with a wrong password")
		}
		if !strings.Contains(r.stderr, "refused the credentials") || strings.Contains(r.stderr, "retrying") {
			t.Errorf("stderr does not fail fast on refused credentials:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, password) {
			t.Errorf("the password appears in the output")
		}
	})

	mark := reg.Mark()
	r := run(t, bin, nil, "push", certs, "--authfile", auth, "--plan", planFile, "--report", reportFile,
		"nix:"+desc1, "docker://"+reg.Host+"/first:v1", "docker://"+reg.Host+"/first:latest")
	if r.err != nil {
		t.Fatalf("push: %v\n%s", r.err, r.stderr)
	}
	// Every request says it is nixpush's, then containers/image's.
	reqs := reg.Requests(mark)
	for _, q := range reqs {
		if !nixpushAgent.MatchString(q.UserAgent) {
			t.Errorf("%s: User-Agent %q is not nixpush's", q, q.UserAgent)
		}
	}
	if len(reqs) == 0 {
		t.Errorf("no request in the registry's access log")
	}
	want := []string{
		fmt.Sprintf("%s %s/second:v1", built2.ManifestDigest, reg.Host),
		fmt.Sprintf("%s %s/other/second:v1", built2.ManifestDigest, reg.Host),
		fmt.Sprintf("%s %s/first:v1", built1.ManifestDigest, reg.Host),
		fmt.Sprintf("%s %s/first:latest", built1.ManifestDigest, reg.Host),
	}
	if got := strings.Split(strings.TrimSpace(r.stdout), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if !strings.Contains(r.stderr, "2/2 images pushed") {
		t.Errorf("no summary on stderr:\n%s", r.stderr)
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep registry.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if len(rep.Images) != 2 || rep.Images[0].Digest != built2.ManifestDigest || rep.Images[1].Status != registry.StatusPushed ||
		rep.Totals.Uploaded.Blobs != 4 || rep.Totals.Mounted.Blobs != 2 || rep.Totals.Manifests != 4 {
		t.Errorf("report:\n%s", b)
	}

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"push"},
			{"push", "docker://" + reg.Host + "/x:v1"},
			{"push", "nix:" + desc1},
			{"push", "nix:" + desc1, "docker://" + reg.Host + "/x"},
		} {
			if r := run(t, bin, nil, args...); r.err == nil {
				t.Errorf("%v succeeded", args)
			}
		}
	})
}

// nixpushAgent matches nixpush's User-Agent.
var nixpushAgent = regexp.MustCompile(`^nixpush/\S+ containers/\S+ \(github.com/containers/image\)$`)

// TestPushKeepGoing: with --keep-going, an image whose repository always
// fails does not stop the others; the exit code and the report say it failed.
func TestPushKeepGoing(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	proxy.Fail(testenv.FaultRule{Method: "PATCH", PathContains: "/broken/", Times: -1, Kind: testenv.Unavailable})
	bin := buildNixpush(t)
	desc, built := fixture(t)
	reportFile := filepath.Join(t.TempDir(), "report.json")
	r := run(t, bin, nil, "push", "--dest-tls-verify=false", "--keep-going", "--retry-times=1", "--retry-delay=10ms",
		"--report", reportFile,
		"nix:"+desc, "docker://"+proxy.Host+"/broken/app:v1",
		desc, "docker://"+proxy.Host+"/good/app:v1")
	if r.err == nil {
		t.Fatalf("push succeeded with a broken repository:\n%s", r.stderr)
	}
	if got, want := strings.TrimSpace(r.stdout), built.ManifestDigest.String()+" "+proxy.Host+"/good/app:v1"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if !strings.Contains(r.stderr, "1/2 images pushed") || !strings.Contains(r.stderr, "broken/app") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep registry.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Images[0].Status != registry.StatusFailed || rep.Images[0].Error == "" || rep.Images[1].Status != registry.StatusPushed || rep.Totals.Failed != 1 {
		t.Errorf("report:\n%s", b)
	}
}
