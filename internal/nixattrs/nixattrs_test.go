package nixattrs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/internal/nixattrs"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var v struct {
		Program string `json:"program"`
	}
	good := write("good.json", `{"outputs": {"out": "/nix/store/x-app"}, "program": "push", "system": "x86_64-linux"}`)
	raw, out, err := nixattrs.Read(good, &v)
	if err != nil || out != "/nix/store/x-app" || v.Program != "push" || !strings.Contains(string(raw), `"system"`) {
		t.Fatalf("Read = %q, %q, %+v, %v", raw, out, v, err)
	}
	for _, c := range []struct {
		name, body string
		is         error
		want       string
	}{
		{"no-out.json", `{"program": "push"}`, nixattrs.ErrNoOut, "outputs.out: missing"},
		{"bad-type.json", `{"outputs": {"out": "/nix/store/x"}, "program": 3}`, nil, "program: expected"},
		{"bad-out.json", `{"outputs": {"out": 3}}`, nil, "outputs.out: expected"},
		{"dir", "", jsonfield.ErrNotRegular, "dir"},
	} {
		p := filepath.Join(dir, c.name)
		if c.name == "dir" {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			write(c.name, c.body)
		}
		_, _, err := nixattrs.Read(p, &v)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.name, err, c.want)
		}
	}
}
