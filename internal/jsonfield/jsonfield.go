// Package jsonfield decodes JSON documents that people write or that Nix
// writes for them, so that every error names the field at fault.
package jsonfield

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

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
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("%s: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return fmt.Errorf("malformed JSON: %w", err)
		}
		return err // json: unknown field "x" names itself
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("malformed JSON: data after the top-level value")
	}
	return nil
}
