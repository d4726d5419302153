package jsonfield

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type path struct {
	Path    string `json:"path"`
	NarSize uint64 `json:"narSize"`
	UID     *int   `json:"uid,omitempty"`
}

type embedded struct {
	Paths []path    `json:"paths"`
	MTime time.Time `json:"mtime"`
}

type layer struct {
	embedded
	Size   int64             `json:"size"`
	Labels map[string]string `json:"labels"`
	Hidden string            `json:"-"`
}

type doc struct {
	Name   string  `json:"name"`
	Layers []layer `json:"layers"`
	Inner  struct {
		Size int `json:"size"`
	} `json:"inner"`
	Pair [2]int `json:"pair"`
	Any  any    `json:"any"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, in string
		strict   bool
		want     string // the whole error; "" = no error
		is       error  // errors.Is target, if any
	}{
		{"ok", `{"name":"a","inner":{"size":1},"layers":[{"paths":[{"path":"p","narSize":3}],"mtime":"1970-01-01T00:00:01Z"}]}`, true, "", nil},
		{"case-insensitive key", `{"NAME":"a","Layers":[{"Size":1}]}`, true, "", nil},
		{"null anywhere", `{"name":null,"layers":[null,{"paths":null,"mtime":null}]}`, true, "", nil},
		{"type error in a nested array element", `{"layers":[{},{},{},{"paths":[{"narSize":"x"}]}]}`, true,
			`layers[3].paths[0].narSize: expected an integer from 0 to 2^64-1, got JSON string`, nil},
		{"fraction for an int64", `{"layers":[{},{"size":1.5}]}`, true,
			`layers[1].size: expected an integer from -2^63 to 2^63-1, got JSON number 1.5`, nil},
		{"negative for a uint64", `{"layers":[{"paths":[{},{},{"narSize":-1}]}]}`, true,
			`layers[0].paths[2].narSize: expected an integer from 0 to 2^64-1, got JSON number -1`, nil},
		{"overflow of a *int", `{"layers":[{"paths":[{"uid":99999999999999999999}]}]}`, true,
			`layers[0].paths[0].uid: expected an integer from -2^63 to 2^63-1, got JSON number 99999999999999999999`, nil},
		{"object for an array", `{"layers":{"size":1}}`, true, `layers: expected an array, got JSON object`, nil},
		{"string for a struct", `{"layers":["big"]}`, true, `layers[0]: expected an object, got JSON string`, nil},
		{"number in a map", `{"layers":[{"labels":{"org.example.title":7}}]}`, true,
			`layers[0].labels["org.example.title"]: expected a string, got JSON number 7`, nil},
		{"fixed array", `{"pair":[1,"two"]}`, true, `pair[1]: expected an integer from -2^63 to 2^63-1, got JSON string`, nil},
		{"top-level kind", `[1]`, true, `expected an object, got JSON array`, nil},
		{"unknown nested field", `{"layers":[{},{"paths":[{},{"fooo":1}]}]}`, true, `layers[1].paths[1].fooo: unknown field`, ErrUnknownField},
		{"unknown field of an embedded struct's level", `{"layers":[{"embedded":{}}]}`, true, `layers[0].embedded: unknown field`, ErrUnknownField},
		{"field tagged -", `{"layers":[{"Hidden":"x"}]}`, true, `layers[0].Hidden: unknown field`, ErrUnknownField},
		{"unknown top-level field", `{"nmae":"a"}`, true, `nmae: unknown field`, ErrUnknownField},
		{"unknown field lenient", `{"nmae":"a","layers":[{"fooo":1}]}`, false, "", nil},
		{"bad time", `{"layers":[{},{"mtime":"yesterday"}]}`, true,
			`layers[1].mtime: "yesterday" is not an RFC 3339 time such as 2006-01-02T15:04:05Z`, nil},
		{"number for a time", `{"layers":[{"mtime":5}]}`, true, `layers[0].mtime: expected an RFC 3339 time string, got JSON number 5`, nil},
		{"first error in document order", `{"layers":[{"size":"x"},{"fooo":1}]}`, true,
			`layers[0].size: expected an integer from -2^63 to 2^63-1, got JSON string`, nil},
		{"syntax error names the open value", "{\"layers\":[{},\n{\"size\":1,}]}", true,
			`layers[1]: malformed JSON at line 2, column 11: invalid character '}' looking for beginning of object key string`, ErrMalformed},
		{"syntax error in a value", `{"layers":[{"size":tru}]}`, true,
			`layers[0].size: malformed JSON at line 1, column 23: invalid character '}' in literal true (expecting 'e')`, ErrMalformed},
		{"truncated", `{"name":`, true, `name: malformed JSON at line 1, column 9: unexpected EOF`, ErrMalformed},
		{"empty", ``, false, `malformed JSON: empty document`, ErrMalformed},
		{"trailing data", `{} {}`, false, `malformed JSON: data after the top-level value at line 1, column 4`, ErrMalformed},
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
			case c.want == "":
				return
			case err == nil:
				t.Fatalf("no error, want %q", c.want)
			case err.Error() != c.want:
				t.Fatalf("error\n  %s\nwant\n  %s", err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%v is not an *Error", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
		})
	}
}

// TestTypeErrorUnwraps: callers can still match encoding/json's and time's
// error types.
func TestTypeErrorUnwraps(t *testing.T) {
	var d doc
	var te *json.UnmarshalTypeError
	if err := Strict([]byte(`{"layers":[{"size":"x"}]}`), &d); !errors.As(err, &te) {
		t.Errorf("%v does not unwrap to *json.UnmarshalTypeError", err)
	}
	var pe *time.ParseError
	if err := Strict([]byte(`{"layers":[{"mtime":"x"}]}`), &d); !errors.As(err, &pe) {
		t.Errorf("%v does not unwrap to *time.ParseError", err)
	}
}

func TestPrefix(t *testing.T) {
	var p path
	err := Prefix("perms[2]", Strict([]byte(`{"mdoe":"0755"}`), &p))
	if err.Error() != "perms[2].mdoe: unknown field" || !errors.Is(err, ErrUnknownField) {
		t.Errorf("got %v", err)
	}
	if err := Prefix("config", nil); err != nil {
		t.Errorf("Prefix of nil: %v", err)
	}
	err = Prefix("config", errors.New("plain"))
	if err.Error() != "config: plain" {
		t.Errorf("got %v", err)
	}
}

// FuzzDecode: decoding never panics, every error is an *Error, and the walk
// always finds the error encoding/json reports (never falling back on
// encoding/json's own message, which starts with "json: ").
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"name":"a","layers":[{"paths":[{"path":"p","narSize":3}],"mtime":"1970-01-01T00:00:01Z"}]}`))
	f.Add([]byte(`{"layers":[{},{"paths":[{},{"fooo":1}]}],"pair":[1,2,3],"any":{"x":[null]}}`))
	f.Add([]byte(`{"layers":[{"labels":{"a.b":1},"mtime":"x","size":1e400}]}`))
	f.Add([]byte("{\"layers\":[{\n\"size\":1,}]}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func([]byte, any) error{Strict, Lenient} {
			var d doc
			err := decode(b, &d)
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("%v is not an *Error", err)
			}
			if e != nil && strings.HasPrefix(e.Msg, "json: ") {
				t.Fatalf("the walk did not find the error: %v", err)
			}
		}
	})
}
