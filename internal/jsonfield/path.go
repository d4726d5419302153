package jsonfield

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// syntaxPath walks the tokens of b, which has a syntax error, and returns
// the path of the innermost value open where the walk fails: the
// container, plus the key when the value of that key is being read.
func syntaxPath(b []byte) string {
	type frame struct {
		path    string
		array   bool
		index   int    // elements seen, in an array
		key     string // last key read, in an object
		pending bool   // key read, its value not yet complete
	}
	var stack []frame
	// child is the path of the next value in the innermost container.
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.array {
			return joinPath(f.path, indexSegment(f.index))
		}
		return joinPath(f.path, keySegment(f.key))
	}
	// done records that a value of the innermost container is complete.
	done := func() {
		if len(stack) == 0 {
			return
		}
		f := &stack[len(stack)-1]
		if f.array {
			f.index++
		} else {
			f.pending = false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			if len(stack) == 0 {
				return ""
			}
			f := stack[len(stack)-1]
			if f.pending || f.array {
				return child()
			}
			return f.path
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, frame{path: child(), array: tok == json.Delim('[')})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && !stack[n-1].pending {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].pending = true
			continue
		}
		done()
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType        = reflect.TypeFor[time.Time]()
)

// locate walks the first JSON value of b, which is well-formed but does not
// decode into a value of type t, and returns the first error in document
// order, with its path. It returns nil when it finds none: the walk follows
// encoding/json's rules for field names (tags, embedding, case-insensitive
// match) closely but not to the letter, and the caller then falls back on
// encoding/json's own error.
func locate(b []byte, t reflect.Type, strict bool) *Error {
	var raw json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return nil
	}
	return walker{strict: strict}.value(raw, t, "")
}

type walker struct{ strict bool }

func (w walker) value(raw []byte, t reflect.Type, path string) *Error {
	if string(raw) == "null" {
		return nil // null leaves any value unchanged
	}
	if leaf(t) {
		return w.leaf(raw, t, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.value(raw, t.Elem(), path)
	case reflect.Struct:
		return w.object(raw, t, path)
	case reflect.Map:
		return w.mapping(raw, t, path)
	case reflect.Slice, reflect.Array:
		return w.array(raw, t, path)
	}
	return w.leaf(raw, t, path)
}

// leaf reports whether encoding/json decodes t as a whole rather than
// member by member.
func leaf(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	if t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Struct, reflect.Map, reflect.Array:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 // []byte is a base64 string
	}
	return true
}

// leaf decodes raw into a new value of type t with encoding/json itself.
func (w walker) leaf(raw []byte, t reflect.Type, path string) *Error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if w.strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(reflect.New(t).Interface())
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &pe):
		return &Error{Path: path, Msg: fmt.Sprintf("%s is not an RFC 3339 time such as 2006-01-02T15:04:05Z", raw), Err: err}
	case t == timeType && raw[0] != '"':
		return mismatch(raw, t, path)
	case errors.As(err, &te) && te.Field == "":
		return &Error{Path: path, Msg: fmt.Sprintf("expected %s, got JSON %s", describe(te.Type), kindOf(raw)), Err: err}
	case errors.As(err, &te):
		return &Error{Path: joinPath(path, te.Field), Msg: fmt.Sprintf("expected %s, got JSON %s", describe(te.Type), te.Value), Err: err}
	}
	return &Error{Path: path, Msg: err.Error(), Err: err}
}

func (w walker) object(raw []byte, t reflect.Type, path string) *Error {
	if raw[0] != '{' {
		return mismatch(raw, t, path)
	}
	fields := fieldsOf(t)
	return members(raw, func(key string, val []byte) *Error {
		p := joinPath(path, keySegment(key))
		ft, ok := fields.lookup(key)
		if !ok {
			if w.strict {
				return &Error{Path: p, Msg: ErrUnknownField.Error(), Err: ErrUnknownField}
			}
			return nil
		}
		return w.value(val, ft, p)
	})
}

func (w walker) mapping(raw []byte, t reflect.Type, path string) *Error {
	if raw[0] != '{' {
		return mismatch(raw, t, path)
	}
	return members(raw, func(key string, val []byte) *Error {
		return w.value(val, t.Elem(), joinPath(path, keySegment(key)))
	})
}

func (w walker) array(raw []byte, t reflect.Type, path string) *Error {
	if raw[0] != '[' {
		return mismatch(raw, t, path)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	for i := 0; dec.More(); i++ {
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil
		}
		if t.Kind() == reflect.Array && i >= t.Len() {
			return nil // encoding/json drops extra elements
		}
		if e := w.value(val, t.Elem(), joinPath(path, indexSegment(i))); e != nil {
			return e
		}
	}
	return nil
}

// members calls f for each member of the JSON object raw, in order, until
// f returns an error.
func members(raw []byte, f func(key string, val []byte) *Error) *Error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil
		}
		if e := f(key, val); e != nil {
			return e
		}
	}
	return nil
}

// mismatch is the error for a JSON value of the wrong kind for t.
func mismatch(raw []byte, t reflect.Type, path string) *Error {
	got := kindOf(raw)
	return &Error{
		Path: path,
		Msg:  fmt.Sprintf("expected %s, got JSON %s", describe(t), got),
		Err:  &json.UnmarshalTypeError{Value: got, Type: t, Field: path},
	}
}

// kindOf names the kind of a well-formed JSON value as encoding/json's
// UnmarshalTypeError.Value does ("string", "number 1.5", …).
func kindOf(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number " + string(raw)
}

// describe says in JSON terms what a value of type t must be.
func describe(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == timeType {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer from -2^%d to 2^%[1]d-1", t.Bits()-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprintf("an integer from 0 to 2^%d-1", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Interface:
		return "a value"
	}
	return "a " + t.String()
}

// fields are a struct type's JSON fields by name.
type fields map[string]reflect.Type

// lookup finds key as encoding/json does: an exact match first, else a
// case-insensitive one.
func (fs fields) lookup(key string) (reflect.Type, bool) {
	if t, ok := fs[key]; ok {
		return t, true
	}
	for name, t := range fs {
		if strings.EqualFold(name, key) {
			return t, true
		}
	}
	return nil, false
}

// fieldsOf lists the JSON fields of struct type t, with the fields of
// embedded structs promoted; a shallower field hides a deeper one of the
// same name.
func fieldsOf(t reflect.Type) fields {
	fs := fields{}
	level := []reflect.Type{t}
	for depth := 0; len(level) > 0 && depth < 16; depth++ {
		seen := map[string]bool{}
		var next []reflect.Type
		for _, st := range level {
			for i := range st.NumField() {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				ft := f.Type
				if f.Anonymous && name == "" {
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if ft.Kind() == reflect.Struct {
						next = append(next, ft)
						continue
					}
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, shallower := fs[name]; shallower && !seen[name] {
					continue
				}
				seen[name] = true
				fs[name] = f.Type
			}
		}
		level = next
	}
	return fs
}
