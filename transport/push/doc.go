// Package push copies images between containers/image transports, with the
// settings nixpush needs to push nix: images: layers are kept exactly as
// described (no recompression), so every blob's digest is known before any
// byte is read and a blob the registry already has is never produced.
//
// Copy and CopyImage take functional options; the nixpush CLI turns flags
// into them. Nothing here reads environment variables; containers/image
// itself reads its usual files (registries.conf, auth.json, docker's
// config.json, credential helpers).
package push
