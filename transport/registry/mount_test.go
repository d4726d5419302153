package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport/registry"
)

// TestMountRefused: a registry that ignores mounts and starts an ordinary
// upload instead (202, as the distribution spec allows) gets the blob
// uploaded, and the run succeeds.
func TestMountRefused(t *testing.T) {
	reg := testenv.StartRegistry(t)
	proxy := testenv.StartFaultProxy(t, reg.Host)
	proxy.Fail(testenv.FaultRule{Method: http.MethodPost, Times: -1, Kind: testenv.RefuseMount})
	host := proxy.Host

	f := newFamily(t, 2, 0)
	var imgs []registry.Image
	for i, p := range f.paths {
		imgs = append(imgs, registry.Image{Source: p, Destinations: []string{
			fmt.Sprintf("%s/nomount/a:v%d", host, i), fmt.Sprintf("%s/nomount/b:v%d", host, i),
		}})
	}
	mark := reg.Mark()
	rep, err := registry.Push(context.Background(), imgs, stateless(t), registry.WithRetry(1, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	unique := 2 + 2*2
	if proxy.Faults() != unique || rep.Totals.Mounted.Blobs != 0 || rep.Totals.Uploaded.Blobs != 2*unique {
		t.Errorf("%d mounts refused, totals %+v; want %d refused, every blob uploaded to both repositories", proxy.Faults(), rep.Totals, unique)
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
	// Each session a refused mount opened is cancelled, not left to expire.
	if deletes != unique {
		t.Errorf("%d upload sessions cancelled, want the %d that refused mounts opened", deletes, unique)
	}
	for i := range 2 {
		if got := pullAll(t, fmt.Sprintf("%s/nomount/b:v%d", reg.Host, i)); got != f.builts[i].ManifestDigest {
			t.Errorf("nomount/b:v%d: %s", i, got)
		}
	}
}
