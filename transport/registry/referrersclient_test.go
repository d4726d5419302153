package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/types"
)

// TestHTTPSOnly: with TLS verified, the referrers client sends nothing
// over plain HTTP (ggcr would fall back to it for private addresses), and
// HTTPS passes.
func TestHTTPSOnly(t *testing.T) {
	var hits int
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ })
	plain, secure := httptest.NewServer(h), httptest.NewTLSServer(h)
	defer plain.Close()
	defer secure.Close()

	c := &http.Client{Transport: httpsOnly{secure.Client().Transport}}
	if _, err := c.Get(plain.URL + "/v2/"); !errors.Is(err, errPlainHTTP) {
		t.Errorf("GET %s: %v, want errPlainHTTP", plain.URL, err)
	}
	if hits != 0 {
		t.Fatalf("the plain HTTP server got %d requests", hits)
	}
	res, err := c.Get(secure.URL + "/v2/")
	if err != nil {
		t.Fatalf("GET %s: %v", secure.URL, err)
	}
	res.Body.Close()
	if hits != 1 {
		t.Errorf("the HTTPS server got %d requests, want 1", hits)
	}
}

// TestReferrersNoAPI: a registry that answers the referrers endpoint with
// 400, 406 or a body that is not an index has no referrers API: the
// fallback tag is read instead, and the list is not an error.
func TestReferrersNoAPI(t *testing.T) {
	const subject = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, answer := range []int{http.StatusBadRequest, http.StatusNotAcceptable, http.StatusOK} {
		t.Run(http.StatusText(answer), func(t *testing.T) {
			var fallbackAsked bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.Contains(r.URL.Path, "/referrers/"):
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(answer)
					w.Write([]byte("<html>not here</html>"))
				case strings.HasSuffix(r.URL.Path, "/manifests/sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"):
					fallbackAsked = true
					http.NotFound(w, r)
				default:
					http.Error(w, "unexpected", http.StatusTeapot)
				}
			}))
			defer srv.Close()
			rr := &referrersReader{plain: srv.Client(), base: srv.URL + "/v2/app"}
			list, err := rr.list(context.Background(), subject)
			if err != nil || list.api || !fallbackAsked {
				t.Errorf("list: api %v, fallback asked %v, err %v; want the fallback tag read, no error", list.api, fallbackAsked, err)
			}
		})
	}
}

// TestCertDir: the referrers client finds a registry's certificates where
// containers/image's docker client does: --cert-dir, the per-host
// directory, then /etc/containers/certs.d before /etc/docker/certs.d
// (here beneath RootForImplicitAbsolutePaths).
func TestCertDir(t *testing.T) {
	root := t.TempDir()
	const host = "registry.example:5000"
	sys := &types.SystemContext{RootForImplicitAbsolutePaths: root}
	check := func(what, want string) {
		t.Helper()
		got, err := certDir(sys, host)
		if err != nil || got != want {
			t.Errorf("%s: certDir = %q, %v; want %q", what, got, err, want)
		}
	}
	check("no directory", "")
	docker := filepath.Join(root, "etc/docker/certs.d", host)
	if err := os.MkdirAll(docker, 0o755); err != nil {
		t.Fatal(err)
	}
	check("/etc/docker/certs.d", docker)
	containers := filepath.Join(root, "etc/containers/certs.d", host)
	if err := os.MkdirAll(containers, 0o755); err != nil {
		t.Fatal(err)
	}
	check("/etc/containers/certs.d first", containers)
	sys.DockerPerHostCertDirPath = "/per-host"
	check("per-host directory", filepath.Join("/per-host", host))
	sys.DockerCertPath = "/cert-dir"
	check("--cert-dir", "/cert-dir")
}
