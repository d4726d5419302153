package jsonfield

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
)

// ErrUnknownField is wrapped by the error for a field the target type does
// not have, in Strict mode.
var ErrUnknownField = errors.New("unknown field")

// ErrMalformed is wrapped by the error for a document that is not JSON.
var ErrMalformed = errors.New("malformed JSON")

// Error is a decoding error at one place of a document.
type Error struct {
	// Path is where the error is: "layers[3].paths[0].narSize",
	// `config.Labels["org.opencontainers.image.title"]`, "[2].path" in a
	// top-level array; "" for the document as a whole.
	Path string
	// Msg says what is wrong, without the path.
	Msg string
	// Err is the underlying error (*json.UnmarshalTypeError,
	// *json.SyntaxError, *time.ParseError, ErrUnknownField, …).
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Prefix puts field in front of the path of err, for a document decoded
// on its own that is a field of a larger one ("config", "perms[2]"). An
// error that is not an *Error is wrapped as "field: err"; nil stays nil.
func Prefix(field string, err error) error {
	if err == nil {
		return nil
	}
	// Only an *Error as such: one wrapped in more context keeps it.
	if e, ok := err.(*Error); ok { //nolint:errorlint // see above
		return &Error{Path: joinPath(field, e.Path), Msg: e.Msg, Err: e.Err}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// Strict decodes the single JSON value in b into v. Unknown fields are
// errors, so a typo ("Entrypiont", "mdoe") is caught instead of ignored.
func Strict(b []byte, v any) error { return decode(b, v, true) }

// Lenient is Strict without the check for unknown fields, for documents
// that carry more than the reader needs (Nix's .attrs.json).
func Lenient(b []byte, v any) error { return decode(b, v, false) }

func decode(b []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return explain(b, v, strict, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Msg: fmt.Sprintf("%v: data after the top-level value at %s", ErrMalformed, position(b, dec.InputOffset())), Err: ErrMalformed}
	}
	return nil
}

// explain turns err, encoding/json's failure to decode b into v, into an
// *Error with the path of the value at fault. encoding/json gives a dotted
// path without indices for type errors, and no path at all for unknown
// fields or for errors of a type's own UnmarshalJSON (a bad time): those
// are found again by walking b against v's type.
func explain(b []byte, v any, strict bool, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return malformed(b, se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed(b, int64(len(b))+1, err) // just past the end
	case errors.Is(err, io.EOF):
		return &Error{Msg: fmt.Sprintf("%v: empty document", ErrMalformed), Err: ErrMalformed}
	}
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		if e := locate(b, t.Elem(), strict); e != nil {
			return e
		}
	}
	// The walk found nothing: say what encoding/json said, as well as it can.
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &Error{Path: te.Field, Msg: fmt.Sprintf("expected %s, got JSON %s", describe(te.Type), te.Value), Err: err}
	}
	return &Error{Msg: err.Error(), Err: err}
}

// malformed is the error for a syntax error at offset, with the path of the
// innermost value open there and the line and column.
func malformed(b []byte, offset int64, err error) *Error {
	return &Error{
		Path: syntaxPath(b),
		Msg:  fmt.Sprintf("%v at %s: %v", ErrMalformed, position(b, offset), err),
		Err:  errors.Join(ErrMalformed, err),
	}
}

// position is "line L, column C" (both from 1) of the byte just read when
// offset bytes have been read, as json.SyntaxError.Offset counts them.
func position(b []byte, offset int64) string {
	before := b[:min(max(offset-1, 0), int64(len(b)))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

var identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$-]*$`)

// joinPath appends the object key or array index seg ("[3]") to path.
func joinPath(path, seg string) string {
	switch {
	case seg == "":
		return path
	case path == "" || seg[0] == '[':
		return path + seg
	}
	return path + "." + seg
}

// keySegment is the path segment of an object key: the key itself when it
// reads as a name, else the key quoted in brackets
// (Labels["org.opencontainers.image.title"]).
func keySegment(k string) string {
	if identifier.MatchString(k) {
		return k
	}
	return "[" + strconv.Quote(k) + "]"
}

func indexSegment(i int) string { return "[" + strconv.Itoa(i) + "]" }
