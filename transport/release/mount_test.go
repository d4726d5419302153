package release_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/release"
)

// TestMountRefused: a registry that ignores mounts and starts an ordinary
// upload instead (202, as the distribution spec allows) gets the blob
// uploaded, and the run succeeds.
func TestMountRefused(t *testing.T) {
	reg := testenv.StartRegistry(t)
	var refused atomic.Int32
	target := &url.URL{Scheme: "http", Host: reg.Host}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the registry writes upload Locations for the proxy
		if q := r.In.URL.Query(); q.Get("mount") != "" {
			refused.Add(1)
			r.Out.URL.RawQuery = "" // a plain upload start: 202
		}
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	f := newFamily(t, 2, 0)
	var imgs []release.Image
	for i, p := range f.paths {
		imgs = append(imgs, release.Image{Source: p, Destinations: []string{
			fmt.Sprintf("%s/nomount/a:v%d", host, i), fmt.Sprintf("%s/nomount/b:v%d", host, i),
		}})
	}
	mark := reg.Mark()
	rep, err := release.Push(context.Background(), imgs, stateless(t), release.WithRetry(1, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	unique := 2 + 2*2
	if int(refused.Load()) != unique || rep.Totals.Mounted.Blobs != 0 || rep.Totals.Uploaded.Blobs != 2*unique {
		t.Errorf("%d mounts refused, totals %+v; want %d refused, every blob uploaded to both repositories", refused.Load(), rep.Totals, unique)
	}
	ops := countOps(t, reg.Requests(mark))
	for d, c := range ops.uploads {
		if c != 2 {
			t.Errorf("blob %s stored %d times, want 2 (one per repository)", d, c)
		}
	}
	deletes := 0
	for _, q := range reg.Requests(mark) {
		if q.Method == http.MethodDelete && strings.Contains(q.Path, "/blobs/uploads/") {
			deletes++
		}
	}
	t.Logf("%d upload sessions opened by refused mounts were cancelled", deletes)
	for i := range 2 {
		if got := pullAll(t, fmt.Sprintf("%s/nomount/b:v%d", reg.Host, i)); got != f.builts[i].ManifestDigest {
			t.Errorf("nomount/b:v%d: %s", i, got)
		}
	}
}
