package transport

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
)

// IndexInfo is what `nixpush inspect` shows of a nix: index: what a
// registry will hold after a push, computed without touching the store.
type IndexInfo struct {
	Name        string            `json:"name,omitempty"`
	Tag         string            `json:"tag,omitempty"`
	IndexDigest digest.Digest     `json:"indexDigest"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Manifests are the index's images, each as Inspect describes it, with
	// its description's store path.
	Manifests []IndexImageInfo `json:"manifests"`
	// Index is the OCI image index, as pushed.
	Index json.RawMessage `json:"index"`
}

// IndexImageInfo is one image of an IndexInfo.
type IndexImageInfo struct {
	// Platform is os/architecture[/variant].
	Platform string `json:"platform"`
	// Image is the image description's store path.
	Image string `json:"image"`
	*Info
}

// InspectIndex describes a built index.
func InspectIndex(bi *BuiltIndex) *IndexInfo {
	idx := bi.Index
	info := &IndexInfo{Name: idx.Name, Tag: idx.Tag, IndexDigest: bi.Digest, Annotations: idx.Annotations, Index: bi.Manifest}
	for i, b := range bi.Images {
		info.Manifests = append(info.Manifests, IndexImageInfo{
			Platform: bi.Platform(i).String(), Image: idx.Manifests[i].Image, Info: Inspect(b),
		})
	}
	return info
}

// WriteJSON writes info as indented JSON.
func (info *IndexInfo) WriteJSON(w io.Writer) error { return writeJSON(w, info) }

// WriteText writes info for people: the index digest and annotations, then
// each platform with its manifest digest, size and description.
func (info *IndexInfo) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	name := nameTag(info.Name, info.Tag)
	fmt.Fprintf(tw, "Name:\t%s\n", name)
	fmt.Fprintf(tw, "Index digest:\t%s\n", info.IndexDigest)
	fmt.Fprintf(tw, "Platforms:\t%d\n", len(info.Manifests))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range info.Manifests {
		fmt.Fprintf(w, "\n  %-16s %s  %d layers, %d bytes\n", m.Platform, m.ManifestDigest, len(m.Layers), m.Size)
		fmt.Fprintf(w, "  %-16s %s\n", "", m.Image)
	}
	writeAnnotations(w, info.Annotations)
	return nil
}
