package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// registries are the three implementations, each with how to start it.
var registries = []struct {
	impl  Implementation
	start func(testing.TB, ...RegistryOption) *Registry
}{
	{DockerRegistry, func(t testing.TB, o ...RegistryOption) *Registry {
		return StartRegistry(t, append(o, WithImplementation(DockerRegistry))...)
	}},
	{Distribution, func(t testing.TB, o ...RegistryOption) *Registry {
		return StartRegistry(t, append(o, WithImplementation(Distribution))...)
	}},
	{InProcess, StartInProcessRegistry},
}

// do sends one request and returns the status and the body.
func do(t *testing.T, c *http.Client, method, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// distribution answers 404 for an OCI manifest a client does not accept.
	req.Header.Set("Accept", ociManifestType)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

const ociManifestType = "application/vnd.oci.image.manifest.v1+json"

// ociManifest returns an OCI image manifest of one config and one layer.
func ociManifest(t *testing.T, config string, configSize int, layer string, layerSize int) []byte {
	t.Helper()
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestType,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": configSize},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layerSize}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRegistries runs one sequence of a push against every
// implementation: uploads, a blob seen only in its repository, a
// cross-repository mount, a mount from nowhere, a manifest refused for a
// missing blob and then stored. Each must answer as distribution does,
// and its request log must hold exactly what was sent.
func TestRegistries(t *testing.T) {
	for _, tc := range registries {
		t.Run(string(tc.impl), func(t *testing.T) {
			r := tc.start(t)
			if r.Implementation != tc.impl {
				t.Fatalf("Implementation %q, want %q", r.Implementation, tc.impl)
			}
			if tc.impl != InProcess && r.Version == "" {
				t.Error("no Version")
			}
			if !strings.Contains(r.String(), string(tc.impl)) || !strings.Contains(r.String(), r.Host) {
				t.Errorf("String() = %q names neither the implementation nor the host", r)
			}
			c, err := r.Client()
			if err != nil {
				t.Fatal(err)
			}
			base := r.URL()
			mark := r.Mark()

			layer, config := randomBlob(1<<20), []byte(`{"architecture":"amd64","os":"linux"}`)
			ld, err := blobUpload(c, base, "a/one", layer)
			if err != nil {
				t.Fatal(err)
			}
			cd, err := blobUpload(c, base, "a/one", config)
			if err != nil {
				t.Fatal(err)
			}
			manifest := ociManifest(t, cd, len(config), ld, len(layer))
			steps := []struct {
				method, path, contentType string
				body                      []byte
				want                      int
			}{
				{"HEAD", "/v2/a/one/blobs/" + ld, "", nil, 200},
				{"HEAD", "/v2/b/two/blobs/" + ld, "", nil, 404},
				{"POST", "/v2/b/two/blobs/uploads/?mount=" + ld + "&from=a/one", "", nil, 201},
				{"HEAD", "/v2/b/two/blobs/" + ld, "", nil, 200},
				{"POST", "/v2/c/three/blobs/uploads/?mount=" + ld + "&from=nowhere", "", nil, 202},
				{"PUT", "/v2/b/two/manifests/v1", ociManifestType, manifest, 400}, // the config is not in b/two
				{"POST", "/v2/b/two/blobs/uploads/?mount=" + cd + "&from=a/one", "", nil, 201},
				{"PUT", "/v2/b/two/manifests/v1", ociManifestType, manifest, 201},
				{"GET", "/v2/b/two/blobs/" + ld, "", nil, 200},
			}
			for _, s := range steps {
				status, body := do(t, c, s.method, base+s.path, s.contentType, s.body)
				if status != s.want {
					t.Errorf("%s %s: %d, want %d\n%s", s.method, s.path, status, s.want, body)
				}
				if s.method == "GET" && !bytes.Equal(body, layer) {
					t.Errorf("GET %s: %d bytes, not the layer", s.path, len(body))
				}
			}
			sum := sha256.Sum256(manifest)
			status, _ := do(t, c, "HEAD", fmt.Sprintf("%s/v2/b/two/manifests/sha256:%x", base, sum), "", nil)
			if status != 200 {
				t.Errorf("HEAD the manifest by digest: %d", status)
			}

			var got []string
			for _, q := range r.Requests(mark) {
				got = append(got, q.String())
				if q.UserAgent != "Go-http-client/1.1" {
					t.Errorf("%s: User-Agent %q, want Go's", q, q.UserAgent)
				}
			}
			var want []string
			for range 2 { // the layer, the config
				want = append(want, "POST 202", "PATCH 202", "PUT 201")
			}
			for _, s := range steps {
				want = append(want, fmt.Sprintf("%s %d", s.method, s.want))
			}
			want = append(want, "HEAD 200")
			if len(got) != len(want) {
				t.Fatalf("%d requests logged, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
			}
			for i, g := range got {
				f := strings.Fields(g)
				if f[0]+" "+f[2] != want[i] {
					t.Errorf("request %d: %s, want %s", i, g, want[i])
				}
			}
			if !slices.ContainsFunc(r.Requests(mark), func(q Request) bool {
				return q.Method == "POST" && strings.Contains(q.Path, "mount="+ld) && q.Status == 201
			}) {
				t.Error("the mount's query is not in the logged path")
			}
			if tc.impl != InProcess && r.CPUTime() <= 0 {
				t.Errorf("CPUTime %v after a push", r.CPUTime())
			}
			if tc.impl == InProcess && r.DataDir() != "" {
				t.Errorf("DataDir %q in process", r.DataDir())
			}
		})
	}
}

// TestRegistriesClients: real clients on every implementation: crane
// (go-containerregistry) copies an image from one repository to another
// of the same registry, mounting its blobs, and skopeo (containers/image)
// reads the copy back.
func TestRegistriesClients(t *testing.T) {
	for _, tc := range registries {
		t.Run(string(tc.impl), func(t *testing.T) {
			crane := Tool(t, "crane")
			Tool(t, "skopeo")
			r := tc.start(t)
			c, err := r.Client()
			if err != nil {
				t.Fatal(err)
			}
			layer, config := randomBlob(64<<10), []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			ld, err := blobUpload(c, r.URL(), "src/img", layer)
			if err != nil {
				t.Fatal(err)
			}
			cd, err := blobUpload(c, r.URL(), "src/img", config)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := do(t, c, "PUT", r.URL()+"/v2/src/img/manifests/v1", ociManifestType, ociManifest(t, cd, len(config), ld, len(layer))); status != http.StatusCreated {
				t.Fatalf("PUT manifest: %d\n%s", status, body)
			}
			mark := r.Mark()
			cmd := exec.Command(crane, "copy", "--insecure", r.Host+"/src/img:v1", r.Host+"/dst/img:v1")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("crane copy: %v\n%s", err, out)
			}
			mounts, uploads := 0, 0
			for _, q := range r.Requests(mark) {
				switch {
				case q.Method == "POST" && strings.Contains(q.Path, "mount=") && q.Status == http.StatusCreated:
					mounts++
				case q.Method == "PATCH" || (q.Method == "PUT" && strings.Contains(q.Path, "/blobs/")):
					uploads++
				}
			}
			if mounts != 2 || uploads != 0 {
				t.Errorf("%d blobs mounted and %d uploads, want 2 and 0", mounts, uploads)
			}
			out := Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+r.Host+"/dst/img:v1")
			if !bytes.Contains(out, []byte(ld)) {
				t.Errorf("the copy's manifest does not name the layer %s:\n%s", ld, out)
			}
		})
	}
}

// TestRegistryTLSAuth: both processes serve HTTPS with htpasswd auth,
// answer 401 without the account and take an upload with it.
func TestRegistryTLSAuth(t *testing.T) {
	for _, tc := range registries[:2] {
		t.Run(string(tc.impl), func(t *testing.T) {
			r := tc.start(t, WithTLSAuth("user", "s3cret"))
			if !r.TLS || !strings.HasPrefix(r.URL(), "https://") {
				t.Fatalf("URL %s, TLS %v", r.URL(), r.TLS)
			}
			c, err := r.Client()
			if err != nil {
				t.Fatal(err)
			}
			mark := r.Mark()
			if status, _ := do(t, c, "GET", r.URL()+"/v2/", "", nil); status != http.StatusUnauthorized {
				t.Errorf("GET /v2/ without the account: %d, want 401", status)
			}
			c.Transport = basicAuth{c.Transport, "user", "wrong"}
			if status, _ := do(t, c, "GET", r.URL()+"/v2/", "", nil); status != http.StatusUnauthorized {
				t.Errorf("GET /v2/ with a wrong password: %d, want 401", status)
			}
			c.Transport = basicAuth{c.Transport.(basicAuth).next, "user", "s3cret"}
			if _, err := blobUpload(c, r.URL(), "tls/auth", randomBlob(4096)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, q := range r.Requests(mark) {
				got = append(got, fmt.Sprintf("%s %d", q.Method, q.Status))
			}
			if want := "GET 401, GET 401, POST 202, PATCH 202, PUT 201"; strings.Join(got, ", ") != want {
				t.Errorf("requests logged: %s, want %s", strings.Join(got, ", "), want)
			}
			if strings.Contains(r.Log(), "s3cret") {
				t.Error("the password is in the registry's log")
			}
		})
	}
}

type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(req)
}

// TestInProcessRefusesTLS: the registry in process has no TLS or auth,
// and says so rather than serving without them.
func TestInProcessRefusesTLS(t *testing.T) {
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }() //nolint:errcheck // Fatal's Goexit stand-in
		StartInProcessRegistry(ft, WithTLSAuth("user", "pass"))
	}()
	if !ft.fatal {
		t.Error("StartInProcessRegistry with WithTLSAuth did not fail")
	}
}

// TestImplementationFromEnv: unset means docker-registry; a value that
// names no implementation is an error.
func TestImplementationFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want Implementation
		ok   bool
	}{
		{"", DockerRegistry, true},
		{"docker-registry", DockerRegistry, true},
		{"distribution", Distribution, true},
		{"in-process", "", false},
		{"zot", "", false},
	} {
		t.Setenv(RegistryEnv, tc.env)
		got, err := ImplementationFromEnv()
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s=%q: %q, %v; want %q, ok %v", RegistryEnv, tc.env, got, err, tc.want, tc.ok)
		}
	}
}

// fakeTB records a Fatal and stops the calling function with a panic.
type fakeTB struct {
	testing.TB
	fatal bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.fatal = true
	panic("fatal")
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal() }
