package registry

import (
	"testing"
	"time"
)

// TestOptions: each option refuses what it cannot mean, when applied.
func TestOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"negative retries":       WithRetry(-1, 0),
		"negative retry delay":   WithRetry(1, -time.Second),
		"zero parallel":          WithParallel(0),
		"negative timeout":       WithTimeout(-time.Second),
		"nil progress":           WithProgress(nil, false, 0),
		"user agent with spaces": WithUserAgent("nixpush 1"),
		"empty user agent":       WithUserAgent(""),
	} {
		if _, err := makeOptions([]Option{opt}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// One contract for the retry delay: 0 is the default backoff.
	o, err := makeOptions([]Option{WithRetry(3, 0)})
	if err != nil || o.retryTimes != 3 || o.retryDelay != DefaultRetryDelay {
		t.Errorf("WithRetry(3, 0): %+v, %v; want 3 retries from %s", o, err, DefaultRetryDelay)
	}
	for _, s := range []string{"", ":pw"} {
		if _, _, err := ParseCredentials(s); err == nil {
			t.Errorf("ParseCredentials(%q) accepted", s)
		}
	}
	if u, p, err := ParseCredentials("user:pa:ss"); err != nil || u != "user" || p != "pa:ss" {
		t.Errorf("ParseCredentials(user:pa:ss) = %q, %q, %v", u, p, err)
	}
}
