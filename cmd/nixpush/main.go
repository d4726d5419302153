// Command nixpush builds, verifies and pushes Nix-built container images.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nixpush/nixpush/cmd/nixpush/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.New().ExecuteContext(ctx); err != nil {
		stop()
		os.Exit(1)
	}
}
