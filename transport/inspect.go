package transport

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/layers"
)

// Info is what `nixpush inspect` shows of a nix: image: what a registry
// will hold after a push, computed without touching the store.
type Info struct {
	Name           string        `json:"name,omitempty"`
	Tag            string        `json:"tag,omitempty"`
	ManifestDigest digest.Digest `json:"manifestDigest"`
	ConfigDigest   digest.Digest `json:"configDigest"`
	Architecture   string        `json:"architecture"`
	OS             string        `json:"os"`
	Variant        string        `json:"variant,omitempty"`
	Size           int64         `json:"size"` // sum of layer sizes (of their blobs, compressed or not)
	Layers         []LayerInfo   `json:"layers"`
	// Annotations are the manifest's (created included when defaulted).
	Annotations map[string]string `json:"annotations,omitempty"`
	Config      json.RawMessage   `json:"config"`   // the OCI image config, as pushed
	Manifest    json.RawMessage   `json:"manifest"` // the OCI image manifest, as pushed
	// SBOM is the image's SBOM and the referrer manifest that attaches it
	// to the image's manifest, when the description has one.
	SBOM *SBOMInfo `json:"sbom,omitempty"`
}

// SBOMInfo is the SBOM of Info.
type SBOMInfo struct {
	Path      string        `json:"path"`
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	// Referrer is the digest of the artifact manifest pushed as a
	// referrer of the image's manifest.
	Referrer digest.Digest `json:"referrer"`
}

// LayerInfo is one layer of Info.
type LayerInfo struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	// DiffID is the digest of the layer's tar: Digest, unless the layer
	// is compressed.
	DiffID      digest.Digest       `json:"diffID"`
	Compression *layers.Compression `json:"compression,omitempty"`
	Paths       []string            `json:"paths"`
	// Blob is a blob layer's file ("/nix/store/…-base/blobs/sha256/…")
	// and the repository it was pulled from, if known.
	Blob           string `json:"blob,omitempty"`
	BlobRepository string `json:"blobRepository,omitempty"`
	CreatedBy      string `json:"createdBy,omitempty"`
}

// Inspect describes a built image.
func Inspect(built *Built) *Info {
	img := built.Image
	info := &Info{
		Name: img.Name, Tag: img.Tag,
		ManifestDigest: built.ManifestDigest, ConfigDigest: built.ConfigDigest,
		Architecture: img.Architecture, OS: img.OS, Variant: img.Variant,
		Config: built.Config, Manifest: built.Manifest,
	}
	var m ocispec.Manifest
	if json.Unmarshal(built.Manifest, &m) == nil {
		info.Annotations = m.Annotations
	}
	for _, l := range img.Layers {
		li := LayerInfo{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, DiffID: l.DiffID, Compression: l.Compression, CreatedBy: l.History.CreatedBy}
		if b := l.Blob; b != nil {
			li.Blob, li.BlobRepository = b.Path+"/"+b.File, b.Repository
		}
		for _, p := range l.Paths {
			s := p.Path
			if p.Rewrite != "" {
				s += " -> " + p.Rewrite
			}
			li.Paths = append(li.Paths, s)
		}
		info.Layers = append(info.Layers, li)
		info.Size += l.Size
	}
	if a := img.SBOM; a != nil {
		info.SBOM = &SBOMInfo{Path: a.Path, MediaType: a.MediaType, Digest: a.Digest, Size: a.Size}
		if refs, err := built.Referrers(); err == nil && len(refs) > 0 {
			info.SBOM.Referrer = refs[0].Digest
		}
	}
	return info
}

// WriteJSON writes info as indented JSON.
func (info *Info) WriteJSON(w io.Writer) error { return writeJSON(w, info) }

// WriteText writes info for people: a summary, the layers with their
// store paths, and the runtime config.
func (info *Info) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	name := nameTag(info.Name, info.Tag)
	platform := info.OS + "/" + info.Architecture
	if info.Variant != "" {
		platform += "/" + info.Variant
	}
	fmt.Fprintf(tw, "Name:\t%s\n", name)
	fmt.Fprintf(tw, "Manifest digest:\t%s\n", info.ManifestDigest)
	fmt.Fprintf(tw, "Config digest:\t%s\n", info.ConfigDigest)
	fmt.Fprintf(tw, "Platform:\t%s\n", platform)
	compressed := 0
	for _, l := range info.Layers {
		if l.Compression != nil {
			compressed++
		}
	}
	if compressed == 0 {
		fmt.Fprintf(tw, "Layers:\t%d (%d bytes uncompressed)\n", len(info.Layers), info.Size)
	} else {
		fmt.Fprintf(tw, "Layers:\t%d (%d bytes; %d compressed)\n", len(info.Layers), info.Size, compressed)
	}
	if sb := info.SBOM; sb != nil {
		fmt.Fprintf(tw, "SBOM:\t%s (%s, %d bytes)\n", sb.Digest, sb.MediaType, sb.Size)
		fmt.Fprintf(tw, "\t%s\n", sb.Path)
		fmt.Fprintf(tw, "SBOM referrer:\t%s\n", sb.Referrer)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, l := range info.Layers {
		fmt.Fprintf(w, "\n  %d  %s  %d bytes", i+1, l.Digest, l.Size)
		if c := l.Compression; c != nil {
			fmt.Fprintf(w, "  %s level %d\n       tar %s", c.Algorithm, c.LevelInEffect(), l.DiffID)
		}
		fmt.Fprintln(w)
		if l.Blob != "" {
			fmt.Fprintf(w, "       base layer %s, as pulled", l.MediaType)
			if l.BlobRepository != "" {
				fmt.Fprintf(w, " from %s", l.BlobRepository)
			}
			fmt.Fprintf(w, "\n       %s\n", l.Blob)
		}
		for _, p := range l.Paths {
			fmt.Fprintf(w, "       %s\n", p)
		}
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(info.Config, &cfg); err != nil {
		return fmt.Errorf("decoding image config: %w", err)
	}
	rc, err := json.MarshalIndent(cfg.Config, "  ", "  ")
	if err != nil {
		return err
	}
	if _, err = fmt.Fprintf(w, "\nConfig:\n  %s\n", strings.TrimSpace(string(rc))); err != nil {
		return err
	}
	writeAnnotations(w, info.Annotations)
	return nil
}

// writeAnnotations writes "Annotations:" and each annotation, sorted.
func writeAnnotations(w io.Writer, annotations map[string]string) {
	if len(annotations) > 0 {
		fmt.Fprintf(w, "\nAnnotations:\n")
		for _, k := range slices.Sorted(maps.Keys(annotations)) {
			fmt.Fprintf(w, "  %s=%s\n", k, annotations[k])
		}
	}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nameTag is "name:tag", or name alone without a tag.
func nameTag(name, tag string) string {
	if tag == "" {
		return name
	}
	return name + ":" + tag
}
