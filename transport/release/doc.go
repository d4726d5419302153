// Package release pushes many nix: images, each to one or more tags in one
// or more repositories of one or more registries, in one run: the engine
// behind `nixpush push`.
//
// The run is planned per registry. Every unique blob (layers and configs of
// all images going to a registry) gets a home repository, the first
// destination repository that needs it: it is checked there once (HEAD) and
// uploaded at most once, streamed from /nix/store. Other repositories of
// the same registry that need it are checked and get it by a cross-repository
// mount from the home (POST ?mount=&from=), falling back to an upload when
// the registry refuses the mount. An image's manifest is written to a
// repository only when all of its blobs are in place there; its tags follow.
//
// All registry work shares one bounded pool (WithParallel). Transient
// failures (dropped connections, timeouts, 408, 429, 5xx) are retried with
// exponential backoff and jitter, re-streaming blobs from the store, whose
// bytes are deterministic; refused credentials, missing repositories and
// digest mismatches fail at once.
//
// A blob shared by several images is read from the first whose store still
// gives it: an image whose layer no longer matches its description fails
// alone, and the next image holding the blob supplies it. The size the
// registry reports for each blob (or the size uploaded) is checked against
// each image's description: an image claiming another size fails with a
// transport.SizeError, and its manifest is not written.
//
// Push returns a Report: per image, its manifest digest and destinations;
// in total, blobs and bytes uploaded, mounted and skipped.
//
// Registries are reached through containers/image's docker transport
// (ImageDestination's TryReusingBlob, PutBlob and PutManifest), with the
// settings of transport/push's options.
package release
