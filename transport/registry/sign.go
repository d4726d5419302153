package registry

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	ciimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport"
)

// ErrSigningKey says a sigstore private key could not be used: the
// passphrase is wrong, or the file is not an encrypted sigstore (cosign)
// private key.
var ErrSigningKey = errors.New("cannot decrypt the sigstore private key: wrong passphrase, or not an encrypted sigstore private key")

// PEM block types of encrypted sigstore private keys: cosign's older name,
// which containers/image's GenerateKeyPair still writes, and the newer
// one. containers/image's loader (signature/sigstore) takes both.
const (
	cosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
	sigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
)

// registriesDConfig is a registries.d file (containers-registries.d(5))
// that stores and reads sigstore signatures as attachments: the OCI
// manifest tagged sha256-<manifest hex>.sig in the image's repository,
// where cosign looks for them.
const registriesDConfig = "default-docker:\n  use-sigstore-attachments: true\n"

// Signer signs manifests with a sigstore private key, as `skopeo copy
// --sign-by-sigstore-private-key` does: through containers/image's own
// sigstore signer, stored as sigstore attachments. Make it with
// NewSigstoreSigner before anything is pushed (that is when the key and
// passphrase are checked) and Close it when done.
type Signer struct {
	signer    *signer.Signer
	publicKey []byte // PEM
	// dir holds the registries.d that turns sigstore attachments on
	// (registries.d/) and the blob-info cache of the run's signing
	// copies (cache/): nothing of the machine's /etc/containers/registries.d
	// decides where signatures go, and nothing is left behind.
	dir string
}

// NewSigstoreSigner reads the encrypted sigstore private key in keyFile
// (cosign's format, as GenerateSigstoreKey writes it) and decrypts it with
// passphrase: a wrong passphrase is ErrSigningKey. The passphrase is not
// kept.
func NewSigstoreSigner(keyFile string, passphrase []byte) (*Signer, error) {
	if keyFile == "" {
		return nil, errors.New("sigstore private key: no file given")
	}
	pub, err := publicKeyOf(keyFile, passphrase)
	if err != nil {
		return nil, err
	}
	sg, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(keyFile, passphrase))
	if err != nil {
		return nil, fmt.Errorf("sigstore private key %s: %w", keyFile, err)
	}
	dir, err := os.MkdirTemp("", "nixpush-sign-")
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "registries.d"), 0o700)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "registries.d", "nixpush-sigstore.yaml"), []byte(registriesDConfig), 0o600)
	}
	if err != nil {
		sg.Close()
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("preparing to sign: %w", err)
	}
	return &Signer{signer: sg, publicKey: pub, dir: dir}, nil
}

// publicKeyOf decrypts the private key in keyFile, only to learn its
// public key (PEM): what a re-push checks existing signatures with.
// containers/image's signer decrypts it again, and keeps it.
func publicKeyOf(keyFile string, passphrase []byte) ([]byte, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading sigstore private key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || (block.Type != cosignPrivateKeyType && block.Type != sigstorePrivateKeyType) {
		return nil, fmt.Errorf("sigstore private key %s: not an encrypted sigstore private key (no %q PEM block)", keyFile, sigstorePrivateKeyType)
	}
	der, err := encrypted.Decrypt(block.Bytes, passphrase)
	if err != nil {
		return nil, fmt.Errorf("sigstore private key %s: %w", keyFile, ErrSigningKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sigstore private key %s: %w", keyFile, err)
	}
	priv, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("sigstore private key %s: a %T cannot sign", keyFile, key)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("sigstore private key %s: %w", keyFile, err)
	}
	return pub, nil
}

// PublicKey returns the PEM public key of the signer's private key.
func (s *Signer) PublicKey() []byte { return s.publicKey }

// Close forgets the key and removes the signer's temporary files.
func (s *Signer) Close() error {
	if s == nil {
		return nil
	}
	err := s.signer.Close()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// WithSigner signs every manifest the run writes with s: each tag of each
// destination gets a sigstore signature whose identity is that tag, unless
// it already has one by s's key (a re-push adds none). copy.Image copies
// (transport/imagecopy) sign what they write too. The caller keeps
// ownership of s.
func WithSigner(s *Signer) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("signer: nil")
		}
		o.signer = s
		return nil
	}
}

// Signers returns the containers/image signers of WithSigner, for
// copy.Options.Signers (nil without one).
func (c *Config) Signers() []*signer.Signer {
	if c.o.signer == nil {
		return nil
	}
	return []*signer.Signer{c.o.signer.signer}
}

// forSigning sets sys up to store and read signatures as sigstore
// attachments.
func (s *Signer) forSigning(sys *types.SystemContext) {
	sys.RegistriesDirPath = filepath.Join(s.dir, "registries.d")
}

// signed says whether the manifest want, in tagged's repository, already
// has a sigstore signature by s's key whose identity is exactly tagged:
// checked by containers/image's own policy evaluation (the check skopeo's
// policy.json "sigstoreSigned" makes), reading the attachments by digest.
func (s *Signer) signed(ctx context.Context, sys *types.SystemContext, tagged reference.NamedTagged, want digest.Digest) (bool, error) {
	canonical, err := reference.WithDigest(reference.TrimNamed(tagged), want)
	if err != nil {
		return false, err
	}
	ref, err := docker.NewReference(canonical)
	if err != nil {
		return false, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return false, fmt.Errorf("reading the signatures of %s: %w", canonical, err)
	}
	defer src.Close()
	req, err := signature.NewPRSigstoreSigned(
		signature.PRSigstoreSignedWithKeyData(s.publicKey),
		signature.PRSigstoreSignedWithSignedIdentity(mustExactReference(tagged)),
	)
	if err != nil {
		return false, err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{req}})
	if err != nil {
		return false, err
	}
	defer pc.Destroy() //nolint:errcheck // only frees memory
	// Rejected (signatures by other keys, or for other tags) means
	// unsigned here; a failure to read the manifest would fail the
	// signing that follows too, where it is retried.
	ok, _ := pc.IsRunningImageAllowed(ctx, ciimage.UnparsedInstance(src, nil))
	return ok, nil
}

// mustExactReference is the policy identity "exactly tagged".
func mustExactReference(tagged reference.NamedTagged) signature.PolicyReferenceMatch {
	m, err := signature.NewPRMExactReference(tagged.String())
	if err != nil {
		// A NamedTagged is always a valid exact reference.
		panic(fmt.Sprintf("exact reference %s: %v", tagged, err))
	}
	return m
}

// sign writes a sigstore signature of built's manifest, with identity
// tagged, where tagged's repository already holds the manifest and every
// blob: containers/image signs only inside copy.Image, which here checks
// each blob (HEAD; all are present, none is read from the store), writes
// the same manifest again and then the signature attachment. Each blob it
// is done with calls touch (the run's stall timer).
func (s *Signer) sign(ctx context.Context, sys *types.SystemContext, src *transport.Reference, want digest.Digest, tagged reference.NamedTagged, touch func()) error {
	dest, err := docker.NewReference(tagged)
	if err != nil {
		return err
	}
	accept, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer accept.Destroy() //nolint:errcheck // only frees memory
	// The copy's blob-info cache goes with the signer's files: a run
	// leaves no state behind.
	destSys := *sys
	destSys.BlobInfoCacheDir = filepath.Join(s.dir, "cache")
	events := make(chan types.ProgressProperties)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range events {
			touch()
		}
	}()
	selection := copy.CopySystemImage
	if src.Index() != nil {
		// Every manifest of the index is in place: each is signed with
		// the tag's identity, then the index (skopeo copy --all).
		selection = copy.CopyAllImages
	}
	man, err := copy.Image(ctx, accept, dest, src, &copy.Options{
		Signers:            []*signer.Signer{s.signer},
		ImageListSelection: selection,
		PreserveDigests:    true,
		DestinationCtx:     &destSys,
		// One operation of the run's pool: the blob checks go one by
		// one.
		MaxParallelDownloads: 1,
		Progress:             events,
		ProgressInterval:     time.Second,
	})
	close(events)
	<-done
	if err != nil {
		return fmt.Errorf("signing %s: %w", tagged, err)
	}
	if d, err := manifest.Digest(man); err != nil || d != want {
		return fmt.Errorf("signing %s: containers/image wrote manifest %s, not %s", tagged, d, want)
	}
	return nil
}

// signTag signs id's image as tagged unless it already has a signature
// by the run's key with that identity (signAs).
func (r *run) signTag(ctx context.Context, id *imageDest, tagged reference.NamedTagged) error {
	src := transport.NewReferenceFromBuilt(id.img.source, id.img.built)
	if err := r.signAs(ctx, src, id.img.built.ManifestDigest, tagged); err != nil {
		return err
	}
	if id.signed == nil {
		id.signed = map[string]bool{}
	}
	id.signed[tagged.String()] = true
	return nil
}

// signAs signs src, whose manifest (or index) want tagged names, unless
// it already has a signature by the run's key with identity tagged,
// retrying transient failures, and counts what it did.
func (r *run) signAs(ctx context.Context, src *transport.Reference, want digest.Digest, tagged reference.NamedTagged) error {
	s := r.o.signer
	sys := r.sysFor(tagged)
	var already bool
	err := r.retry.Do(ctx, "signing "+tagged.String(), func(ctx context.Context, touch func()) error {
		if err := r.acquire(ctx); err != nil {
			return err
		}
		defer r.release()
		touch()
		var err error
		if already, err = s.signed(ctx, sys, tagged, want); err != nil || already {
			return err
		}
		return s.sign(ctx, sys, src, want, tagged, touch)
	})
	if err != nil {
		err = fmt.Errorf("manifest %s as %s written, but not signed: %w", want, tagged, err)
		r.fail(err)
		return err
	}
	if already {
		r.tally.count(SignatureUnchanged, 0)
		r.progress.Note("already signed %s@%s", tagged, want)
	} else {
		r.tally.count(SignatureWritten, 0)
		r.progress.Note("signed %s@%s", tagged, want)
	}
	return nil
}

// GenerateSigstoreKey makes a sigstore key pair with containers/image's
// generator (what `skopeo generate-sigstore-key` does): the private key,
// encrypted with passphrase, in PREFIX.private (mode 0600), the public
// key in PREFIX.pub. It refuses to overwrite either file.
func GenerateSigstoreKey(prefix string, passphrase []byte) (privateFile, publicFile string, err error) {
	if prefix == "" {
		return "", "", errors.New("generating a sigstore key: no output prefix")
	}
	privateFile, publicFile = prefix+".private", prefix+".pub"
	for _, f := range []string{privateFile, publicFile} {
		if _, err := os.Lstat(f); err == nil {
			return "", "", fmt.Errorf("generating a sigstore key: %s exists; refusing to overwrite it", f)
		}
	}
	keys, err := sigstore.GenerateKeyPair(passphrase)
	if err != nil {
		return "", "", fmt.Errorf("generating a sigstore key: %w", err)
	}
	if err := writeNew(privateFile, keys.PrivateKey, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(publicFile, keys.PublicKey, 0o644); err != nil {
		os.Remove(privateFile)
		return "", "", err
	}
	return privateFile, publicFile, nil
}

// writeNew writes b to a file that must not exist yet.
func writeNew(name string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
