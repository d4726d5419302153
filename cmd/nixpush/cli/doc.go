// Package cli holds nixpush's subcommands. Each turns flags into options
// and calls library code; none holds logic of its own.
package cli
