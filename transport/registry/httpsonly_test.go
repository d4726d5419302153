package registry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
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
