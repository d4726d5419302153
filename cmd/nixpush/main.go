package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nixpush/nixpush/cmd/nixpush/cli"
	"github.com/nixpush/nixpush/transport/imagecopy"
)

func main() {
	// containers-storage: (podman's local store) re-executes this binary
	// for some operations; the re-executed copy must run that, not the CLI.
	if imagecopy.Reexec() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Execute(ctx); err != nil {
		stop()
		os.Exit(1)
	}
}
