package cli_test

import (
	"testing"

	"github.com/nixpush/nixpush/cmd/nixpush/cli"
)

// TestHelpHasExamples: the root and every command a user sees (not the
// builders Nix runs, which are hidden) show examples in --help.
func TestHelpHasExamples(t *testing.T) {
	root := cli.New()
	if root.Example == "" {
		t.Error("nixpush --help has no examples")
	}
	var visible int
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		visible++
		if c.Example == "" {
			t.Errorf("nixpush %s --help has no examples", c.Name())
		}
	}
	for _, want := range []string{"copy", "push", "inspect", "verify", "version"} {
		if c, _, err := root.Find([]string{want}); err != nil || c == root || c.Hidden {
			t.Errorf("nixpush %s is missing or hidden", want)
		}
	}
	if visible < 5 {
		t.Errorf("only %d visible commands", visible)
	}
}
