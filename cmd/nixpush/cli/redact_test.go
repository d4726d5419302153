package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
)

// TestErrorsRedacted: an upload that fails carries its URL, whose query
// (?_state=…, or an S3 signature) is a secret of the upload session; and a
// reference written with user:password@ must not echo them. Neither may
// reach stderr or the --report file.
func TestErrorsRedacted(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	proxy.Fail(testenv.FaultRule{Method: "PATCH", PathContains: "/blobs/uploads/", Times: -1, Kind: testenv.Drop, AfterBytes: 10})
	bin := buildNixpush(t)
	desc, _ := fixture(t)
	reportFile := filepath.Join(t.TempDir(), "report.json")

	for _, tc := range []struct {
		name string
		args []string
	}{
		// One retry: its progress note carries the URL too.
		{"push", []string{"push", "--dest-tls-verify=false", "--retry-times=1", "--retry-delay=10ms", "--report", reportFile,
			"nix:" + desc, "docker://" + proxy.Host + "/app:v1"}},
		{"copy", []string{"copy", "--dest-tls-verify=false", "--retry-times=1", "--retry-delay=10ms", "nix:" + desc, "docker://" + proxy.Host + "/app:v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, bin, nil, tc.args...)
			if r.err == nil {
				t.Fatalf("%s succeeded through a proxy that drops every upload", tc.name)
			}
			t.Logf("stderr:\n%s", r.stderr)
			out := r.stderr
			if tc.name == "push" {
				b, err := os.ReadFile(reportFile)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("report:\n%s", b)
				out += string(b)
			}
			if strings.Contains(out, "_state") {
				t.Errorf("an upload URL's query string is printed")
			}
			if !strings.Contains(out, "/blobs/uploads/") {
				t.Errorf("no upload URL in the output; the test no longer shows anything")
			}
		})
	}
}

// TestReferenceUserinfoRedacted: a destination written with
// user:password@ is refused without echoing the password.
func TestReferenceUserinfoRedacted(t *testing.T) {
	const secret = "s3cret-in-ref"
	bin := buildNixpush(t)
	desc, _ := fixture(t)
	plan := filepath.Join(t.TempDir(), "plan.json")
	writeFile(t, plan, `{"images": [{"image": "`+desc+`", "destinations": ["docker://ci:`+secret+`@127.0.0.1:5000/app:v1"]}]}`)
	for _, args := range [][]string{
		{"copy", "nix:" + desc, "docker://ci:" + secret + "@127.0.0.1:5000/app:v1"},
		{"push", "nix:" + desc, "docker://ci:" + secret + "@127.0.0.1:5000/app:v1"},
		{"push", "--plan", plan},
	} {
		r := run(t, bin, nil, args...)
		if r.err == nil {
			t.Errorf("%v succeeded", args[:2])
		}
		if strings.Contains(r.stderr+r.stdout, secret) {
			t.Errorf("%v: the password is printed:\n%s", args[:2], r.stderr)
		}
		if !strings.Contains(r.stderr, "REDACTED@127.0.0.1:5000/app:v1") {
			t.Errorf("%v: the error does not name the destination:\n%s", args[:2], r.stderr)
		}
	}
}
