package testenv

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// blobUpload pushes data through base as a registry client does: POST to
// open a session, PATCH the bytes, PUT to close it. It fails with the
// status of the first step not answered as expected, or the network error.
func blobUpload(c *http.Client, base, repo string, data []byte) (string, error) {
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	loc := base + "/v2/" + repo + "/blobs/uploads/"
	steps := []struct {
		method string
		body   []byte
		want   int
	}{
		{http.MethodPost, nil, http.StatusAccepted},
		{http.MethodPatch, data, http.StatusAccepted},
		{http.MethodPut, nil, http.StatusCreated},
	}
	for _, s := range steps {
		u, err := url.Parse(loc)
		if err != nil {
			return "", err
		}
		if s.method == http.MethodPut {
			q := u.Query()
			q.Set("digest", digest)
			u.RawQuery = q.Encode()
		}
		req, err := http.NewRequest(s.method, u.String(), bytes.NewReader(s.body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := c.Do(req)
		if err != nil {
			return "", fmt.Errorf("%s: %w", s.method, err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck // only the status matters
		res.Body.Close()
		if res.StatusCode != s.want {
			return "", fmt.Errorf("%s: %s", s.method, res.Status)
		}
		// distribution answers an absolute Location, go-containerregistry's
		// registry one relative to the request.
		l, err := res.Request.URL.Parse(res.Header.Get("Location"))
		if err != nil {
			return "", fmt.Errorf("%s: Location: %w", s.method, err)
		}
		loc = l.String()
		if !strings.HasPrefix(loc, base+"/") {
			return "", fmt.Errorf("%s: Location %q does not go through %s", s.method, loc, base)
		}
	}
	return digest, nil
}

func randomBlob(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestFaultProxyForwards(t *testing.T) {
	reg := StartRegistry(t)
	p := StartFaultProxy(t, reg.Host)
	c := &http.Client{}
	data := randomBlob(3 << 20)
	digest, err := blobUpload(c, p.URL(), "pass/through", data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Get(p.URL() + "/v2/pass/through/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET blob: %s, %d bytes, err %v; want 200 and the %d bytes uploaded", res.Status, len(got), err, len(data))
	}
	var seen []string
	for _, q := range p.Requests() {
		if q.Faulted {
			t.Errorf("faulted without a rule: %s", q)
		}
		seen = append(seen, fmt.Sprintf("%s %d", q.Method, q.Status))
	}
	if want := "POST 202,PATCH 202,PUT 201,GET 200"; strings.Join(seen, ",") != want {
		t.Errorf("proxy saw %v, want %s", seen, want)
	}
	// The registry answered the same requests: nothing went around the proxy.
	if n := len(reg.Requests(0)); n != len(seen)+1 { // +1: the readiness GET /v2/
		t.Errorf("registry logged %d requests, want %d:\n%s", n, len(seen)+1, tail(reg.Requests(0), 20))
	}
}

func TestFaultProxyFaults(t *testing.T) {
	reg := StartRegistry(t)
	tests := []struct {
		rule       FaultRule
		wantStatus int
	}{
		{FaultRule{Method: http.MethodPatch, Times: 1, Kind: Drop, AfterBytes: 256 << 10}, 0},
		{FaultRule{Method: http.MethodPost, PathContains: "/blobs/uploads/", Times: 1, Kind: Unavailable}, 503},
		{FaultRule{Method: http.MethodPut, Times: 2, Kind: TooManyRequests}, 429},
		{FaultRule{PathContains: "/blobs/", Times: -1, Kind: Unauthorized}, 401},
		{FaultRule{Method: http.MethodPost, Times: -1, Kind: Forbidden}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.rule.Kind.String(), func(t *testing.T) {
			p := StartFaultProxy(t, reg.Host)
			p.Fail(tc.rule)
			c := &http.Client{}
			repo := "fault/" + tc.rule.Kind.String()
			data := randomBlob(1 << 20)
			attempts := 4
			succeeded := 0
			for i := 0; i < attempts; i++ {
				_, err := blobUpload(c, p.URL(), repo, data)
				var ue *url.Error
				if err == nil {
					succeeded++
				} else if tc.wantStatus != 0 && !strings.Contains(err.Error(), fmt.Sprint(tc.wantStatus)) {
					t.Errorf("attempt %d: %v, want status %d", i, err, tc.wantStatus)
				} else if tc.wantStatus == 0 && !errors.As(err, &ue) {
					t.Errorf("attempt %d: %v, want a network error", i, err)
				}
			}
			faults := 0
			for _, q := range p.Requests() {
				if !q.Faulted {
					continue
				}
				faults++
				if q.Fault != tc.rule.Kind || q.Status != tc.wantStatus || (tc.rule.Method != "" && q.Method != tc.rule.Method) {
					t.Errorf("faulted %s, want %s %s with status %d", q, tc.rule.Method, tc.rule.Kind, tc.wantStatus)
				}
			}
			wantFaults, wantOK := tc.rule.Times, attempts-tc.rule.Times
			if tc.rule.Times < 0 {
				wantFaults, wantOK = attempts, 0
			}
			if faults != wantFaults || p.Faults() != wantFaults || succeeded != wantOK {
				t.Errorf("%d faults and %d uploads succeeded, want %d and %d:\n%v", faults, succeeded, wantFaults, wantOK, p.Requests())
			}
		})
	}
}

// TestFaultProxyRetryAfter checks the 429's header and that Clear stops
// the faults.
func TestFaultProxyRetryAfter(t *testing.T) {
	reg := StartRegistry(t)
	p := StartFaultProxy(t, reg.Host)
	p.Fail(FaultRule{PathContains: "/v2/", Times: -1, Kind: TooManyRequests})
	res, err := http.Get(p.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %s with Retry-After %q, want 429 with 1", res.Status, res.Header.Get("Retry-After"))
	}
	p.Clear()
	res, err = http.Get(p.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after Clear: %s, want 200", res.Status)
	}
}

// TestFaultProxyHangAndRefuseMount: Hang answers nothing until the client
// gives up; RefuseMount turns a mount into a plain upload start (202) and
// leaves other POSTs alone.
func TestFaultProxyHangAndRefuseMount(t *testing.T) {
	reg := StartRegistry(t)
	p := StartFaultProxy(t, reg.Host)
	p.Fail(FaultRule{Method: http.MethodHead, Times: 1, Kind: Hang})
	c := &http.Client{Timeout: 300 * time.Millisecond}
	if res, err := c.Head(p.URL() + "/v2/"); err == nil {
		res.Body.Close()
		t.Fatalf("hung HEAD answered %s", res.Status)
	}
	res, err := c.Head(p.URL() + "/v2/")
	if err != nil {
		t.Fatalf("second HEAD: %v", err)
	}
	res.Body.Close()

	d, err := blobUpload(http.DefaultClient, p.URL(), "mount/a", randomBlob(4096))
	if err != nil {
		t.Fatal(err)
	}
	p.Fail(FaultRule{Method: http.MethodPost, Times: -1, Kind: RefuseMount})
	mount := func(query string) int {
		res, err := http.Post(p.URL()+"/v2/mount/b/blobs/uploads/"+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := mount("?mount=" + url.QueryEscape(d) + "&from=mount/a"); got != http.StatusAccepted {
		t.Errorf("refused mount answered %d, want 202", got)
	}
	if got := mount(""); got != http.StatusAccepted {
		t.Errorf("plain upload start answered %d, want 202", got)
	}
	var faulted []string
	for _, q := range p.Requests() {
		if q.Faulted {
			faulted = append(faulted, q.String())
		}
	}
	// The hung HEAD is recorded when the proxy notices the hang-up, which
	// may come after the mount.
	sort.Strings(faulted)
	if len(faulted) != 2 || !strings.HasPrefix(faulted[0], "HEAD /v2/ 0 (hang)") || !strings.HasPrefix(faulted[1], "POST /v2/mount/b/blobs/uploads/ 202 (refuse-mount)") {
		t.Errorf("faulted requests %q, want the hung HEAD and one refused mount", faulted)
	}
	p.Clear()
	if got := mount("?mount=" + url.QueryEscape(d) + "&from=mount/a"); got != http.StatusCreated {
		t.Errorf("mount after Clear answered %d, want 201", got)
	}
}
