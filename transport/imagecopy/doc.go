// Package imagecopy copies images between containers/image transports with
// copy.Image: nix: images to oci:, dir:, archives, docker-daemon: and
// containers-storage:, and images that are not nix: ones to anywhere.
// A nix: image going to a registry (docker://) is pushed by
// transport/registry, nixpush's one registry engine, which CopyImage hands
// it to.
//
// From nix:, layers and manifest are kept exactly as described (no
// recompression; compressed layers stay as built), so every blob's digest
// is known before any byte is read. The exceptions take Docker manifests
// only: a Docker archive (docker-archive:) gets its layers decompressed,
// and the Docker daemon (docker-daemon:), which takes layers unchanged,
// refuses an image with zstd layers before any work (ErrCompression).
//
// A registry.WithSigner among the registry options signs what copy.Image
// writes (copy.Options.Signers), as skopeo --sign-by-sigstore-private-key
// does; a destination with no registry reference to sign as is refused
// first (ErrSignIdentity).
//
// CopyImage takes functional options; registries are reached with the
// settings of transport/registry's Options (WithRegistryOptions for the
// destination and the run, WithSourceRegistryOptions for the source), with
// its credential rules, retry policy and progress view. Nothing here reads
// environment variables; containers/image itself reads its usual files
// (registries.conf, auth.json, docker's config.json, credential helpers).
package imagecopy
