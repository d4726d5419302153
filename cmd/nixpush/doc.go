// Command nixpush builds, verifies and pushes Nix-built container images.
package main
