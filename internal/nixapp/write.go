package nixapp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixpush/nixpush/internal/nixattrs"
)

// attrs are the structured attributes of an app derivation.
type attrs struct {
	// Program is the file name under bin/.
	Program string `json:"program"`
	// Script is the file's contents, starting with "#!".
	Script string `json:"script"`
}

// WriteFile reads the structured attributes file attrsFile and writes the
// app it describes. It returns the path of the program written.
func WriteFile(attrsFile string) (string, error) {
	var a attrs
	_, out, err := nixattrs.Read(attrsFile, &a)
	if err != nil {
		return "", err
	}
	return Write(out, a.Program, a.Script)
}

// Write writes script to out/bin/program, mode 0555.
func Write(out, program, script string) (string, error) {
	switch {
	case out == "":
		return "", errors.New("outputs.out is not set")
	case program == "" || program == "." || program == ".." || strings.ContainsRune(program, '/'):
		return "", fmt.Errorf("program %q: want a plain file name", program)
	case !strings.HasPrefix(script, "#!"):
		return "", fmt.Errorf("script of %s: want a \"#!\" line first", program)
	}
	bin := filepath.Join(out, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("writing app %s: %w", program, err)
	}
	name := filepath.Join(bin, program)
	if err := os.WriteFile(name, []byte(script), 0o555); err != nil {
		return "", fmt.Errorf("writing app %s: %w", program, err)
	}
	return name, nil
}
