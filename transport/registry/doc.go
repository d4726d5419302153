// Package registry is nixpush's one engine for pushing nix: images to
// registries: `nixpush push` (a release of many images) and `nixpush copy
// nix:… docker://…` (one image, its --additional-tag destinations and
// --mount-from repositories) both run Push.
//
// An image comes in as a transport.Built, the description built once. The
// run is planned per registry. Every unique blob (layers and configs of
// all images going to a registry) gets a home repository, the first
// destination repository that needs it: it is checked there once (HEAD) and
// uploaded at most once, streamed from /nix/store and hashed once as it
// goes. Other repositories of the same registry that need it are checked
// and get it by a cross-repository mount from the home (POST
// ?mount=&from=), or from a repository the image names (Image.MountFrom),
// falling back to an upload when the registry refuses the mount. A base
// image's layer (a blob layer, description.BlobRef) is also mounted from
// the repository it was pulled from when that is on the same registry, and
// is streamed from its file unhashed: the registry checks its digest, and
// only a refused one makes nixpush re-hash the file to name it. An image's
// manifest is written to a repository only when all of its blobs are in
// place there; its tags follow.
//
// All registry work shares one bounded pool (WithParallel). Transient
// failures (dropped connections, timeouts, 408, 429, 5xx) are retried with
// exponential backoff and jitter (Retrier), re-streaming blobs from the
// store, whose bytes are deterministic; refused credentials, missing
// repositories, untrusted certificates and digest mismatches fail at once
// (Permanent).
//
// A blob shared by several images is read from the first whose store still
// gives it: an image whose layer no longer matches its description fails
// alone, and the next image holding the blob supplies it. The size the
// registry reports for each blob (or the size uploaded) is checked against
// each image's description: an image claiming another size fails with a
// transport.SizeError, and its manifest is not written.
//
// An index (Image.Index, or a Source naming an index description) is
// pushed by the same run (index.go): its images join the run as images
// with untagged destinations, sharing its blob work; each image's
// manifest is written by digest once its blobs are in place, then the
// index under its tags, never before every manifest is there. An index
// the repository holds (by tag or digest) needs nothing more.
//
// With WithSigner (a Signer from NewSigstoreSigner, whose key and
// passphrase are checked before anything is pushed), each tag is signed
// once its manifest is in place: a sigstore signature naming the tag,
// written by containers/image's own signer in a copy.Image pass (which
// finds every blob present) and stored as a sigstore attachment; a tag
// that already has a valid signature by the key, checked with
// containers/image's policy evaluation, gets none, so a re-push writes no
// signature.
//
// Once an image's manifest is in a repository, its referrers
// (transport.Referrer: its SBOM) are attached to it there (referrers.go):
// the repository's referrers list is read (the OCI 1.1 referrers API, else
// the fallback tag sha256-<hex>; referrersclient.go, the one read
// containers/image has no call for), and a referrer it lacks is written,
// its blobs first, then its manifest, then on a registry without the API
// the fallback tag's index, merged with what it listed. WithReferrers(false)
// attaches none.
//
// Push returns a Report: per image, its manifest digest and destinations;
// in total, blobs and bytes uploaded, mounted and skipped, and referrers
// written.
//
// Options are the one set of registry settings of nixpush: credentials per
// registry (SystemContexts says what is refused before any request), TLS,
// certificates, the User-Agent, retries, progress. transport/imagecopy
// takes the same Options (through Config) for copies that are not pushes
// of nix: images. Registries are reached through containers/image's docker
// transport (TryReusingBlob, PutBlob, PutManifest, GetDigest); what nixpush
// relies on beyond its public API is in cimage.go. Plan files (ReadPlan)
// list images and destinations for `nixpush push --plan`.
package registry
