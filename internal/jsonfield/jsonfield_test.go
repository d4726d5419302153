package jsonfield

import (
	"strings"
	"testing"
)

type doc struct {
	Name  string `json:"name"`
	Inner struct {
		Size int `json:"size"`
	} `json:"inner"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, in string
		strict   bool
		want     string // "" = no error
	}{
		{"ok", `{"name":"a","inner":{"size":1}}`, true, ""},
		{"type error names the field path", `{"inner":{"size":"big"}}`, true, "inner.size: expected int"},
		{"unknown field strict", `{"nmae":"a"}`, true, `unknown field "nmae"`},
		{"unknown field lenient", `{"nmae":"a"}`, false, ""},
		{"syntax", `{"name":`, true, "malformed JSON"},
		{"empty", ``, false, "malformed JSON"},
		{"trailing data", `{} {}`, false, "data after the top-level value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d doc
			decode := Lenient
			if c.strict {
				decode = Strict
			}
			err := decode([]byte(c.in), &d)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
