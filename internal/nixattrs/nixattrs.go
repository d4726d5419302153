package nixattrs

import (
	"errors"
	"fmt"

	"github.com/nixpush/nixpush/internal/jsonfield"
)

// MaxSize is the largest .attrs.json read, in bytes. Most of a large one is
// the closure graph that exportReferencesGraph puts in it.
const MaxSize = 256 << 20

// ErrNoOut says the file has no outputs.out: it was not written by Nix for
// a derivation with structured attributes.
var ErrNoOut = errors.New("outputs.out: missing")

// Read reads the structured attributes file name (a regular file of at
// most MaxSize bytes) and decodes it into v, ignoring the attributes v has
// no field for (system, builder, name, …). It returns the file's bytes, for
// callers that decode a part of it again more strictly, and the path of
// the derivation's output. Errors name the file and the field at fault.
func Read(name string, v any) (raw []byte, out string, err error) {
	raw, err = jsonfield.ReadFile(name, MaxSize)
	if err != nil {
		return nil, "", fmt.Errorf("reading structured attributes: %w", err)
	}
	var outputs struct {
		Outputs struct {
			Out string `json:"out"`
		} `json:"outputs"`
	}
	if err := jsonfield.Lenient(raw, &outputs); err != nil {
		return nil, "", fmt.Errorf("structured attributes %s: %w", name, err)
	}
	if outputs.Outputs.Out == "" {
		return nil, "", fmt.Errorf("structured attributes %s: %w", name, ErrNoOut)
	}
	if err := jsonfield.Lenient(raw, v); err != nil {
		return nil, "", fmt.Errorf("structured attributes %s: %w", name, err)
	}
	return raw, outputs.Outputs.Out, nil
}
