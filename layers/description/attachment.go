package description

import (
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/layers"
)

// MediaTypeSPDX is the media type of an SPDX JSON document: the SBOM's
// blob, and the artifact type of the referrer that carries it.
const MediaTypeSPDX = "application/spdx+json"

// MaxAttachmentSize is the largest attachment (an SBOM) nixpush reads: it
// is read whole, checked against its digest, then pushed. An SPDX document
// of 100,000 store paths is about 60 MiB.
const MaxAttachmentSize = 128 << 20

var featSBOM = feature{"sbom", 3}

// Attachment is a file in the store that is pushed beside the image, as an
// OCI referrer of its manifest: Image.SBOM.
type Attachment struct {
	// Path is the file: exactly a store path, a regular file, read beneath
	// the store without following a symlink.
	Path      string        `json:"path"`
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// Validate checks an attachment whose media type must be mediaType. The
// error starts with the field name.
func (a *Attachment) Validate(mediaType string) error {
	if err := layers.ValidateStorePath(a.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if a.MediaType != mediaType {
		return fmt.Errorf("mediaType: %q, want %q", a.MediaType, mediaType)
	}
	if err := checkDigest("digest", a.Digest); err != nil {
		return err
	}
	if a.Size <= 0 || a.Size > MaxAttachmentSize {
		return fmt.Errorf("size: %d, want 1 to %d bytes", a.Size, MaxAttachmentSize)
	}
	return nil
}

// ReadAttachment reads a's file from the store (confined: layers.ReadStoreFile)
// and checks it against a's digest and size, so that what is pushed or
// printed is exactly what the build recorded.
func ReadAttachment(a *Attachment, opts ...layers.Option) ([]byte, error) {
	b, err := layers.ReadStoreFile(a.Path, MaxAttachmentSize, opts...)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != a.Size {
		return nil, fmt.Errorf("store path %s: %d bytes, but the description says %d: %w", a.Path, len(b), a.Size, ErrAttachmentChanged)
	}
	if got := digest.FromBytes(b); got != a.Digest {
		return nil, fmt.Errorf("store path %s: digest %s, but the description says %s: %w", a.Path, got, a.Digest, ErrAttachmentChanged)
	}
	return b, nil
}

// ErrAttachmentChanged is wrapped by the error for an attachment whose file
// no longer matches its description.
var ErrAttachmentChanged = errors.New("attachment does not match its description")
