package builder

import (
	"encoding/json"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/internal/nixattrs"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
)

// Attrs are the structured attributes of a nixpush derivation, as Nix
// writes them to .attrs.json. Attributes nixpush does not know (builder,
// system, name, …) are ignored.
type Attrs struct {
	Outputs struct {
		Out string `json:"out"`
		// SBOM is the "sbom" output of buildImage, when it has one: the
		// image's SPDX document is written there.
		SBOM string `json:"sbom"`
	} `json:"outputs"`
	// Closure is the exportReferencesGraph.closure output: the closure of
	// Deps, CopyToRoot and ConfigRefs.
	Closure json.RawMessage `json:"closure"`
	// LayersClosure is the exportReferencesGraph.layersClosure output of
	// buildImage with an SBOM: the closure of Layers (the layer files and
	// so every store path they list), for the SBOM's references.
	LayersClosure json.RawMessage `json:"layersClosure"`

	// Deps are store paths placed at their store paths, with their
	// closures (buildLayer).
	Deps []string `json:"deps"`
	// CopyToRoot are store paths whose contents are placed at "/".
	CopyToRoot []string `json:"copyToRoot"`
	// Layers are the store paths of buildLayer outputs (layer files).
	Layers []string `json:"layers"`
	// MaxLayers is the budget of computed layers; 0 means 1.
	MaxLayers int `json:"maxLayers"`
	// Perms override metadata in the computed layers.
	Perms []layers.Perm `json:"perms"`
	// MTime is the mtime of computed layers' entries (RFC 3339).
	MTime string `json:"mtime"`
	// Metadata is the history of computed layers (buildLayer).
	Metadata Metadata `json:"metadata"`
	// Compression compresses computed layers (nil: uncompressed); it is
	// decoded strictly.
	Compression *layers.Compression `json:"compression"`

	// ImageName and ImageTag are the image's name and, when set
	// explicitly, tag (buildImage).
	ImageName string  `json:"imageName"`
	ImageTag  *string `json:"imageTag"`
	// Config is the image's runtime configuration (buildImage, and the
	// carrier derivation).
	// It is decoded strictly: an unknown field is an error.
	Config json.RawMessage `json:"config"`
	// ConfigRefs is the store path of the carrier derivation whose
	// references are the store paths Config names (buildImage).
	ConfigRefs string `json:"configRefs"`
	// FromImage is the store path of the base image (buildImage): a
	// pullImage output or a nixpush image description.
	FromImage string `json:"fromImage"`
	// Created is the image's creation time (RFC 3339).
	Created      string `json:"created"`
	Architecture string `json:"arch"`
	OS           string `json:"os"`
	Variant      string `json:"variant"`
	// Annotations are the manifest's annotations (buildImage).
	Annotations map[string]string `json:"annotations"`

	// Ignore are store paths left out of the closure, with the paths only
	// they refer to (buildImage, buildLayer).
	Ignore []string `json:"ignore"`
	// IncludeStorePaths false keeps only the copyToRoot contents in the
	// computed layers (buildImage); absent means true.
	IncludeStorePaths *bool `json:"includeStorePaths"`
	// NixDatabase is the store path of the Nix database (a nix-db output,
	// also in CopyToRoot) whose registered paths must be exactly the
	// image's store paths (buildImage with initializeNixDatabase).
	NixDatabase string `json:"nixDatabase"`
}

// Metadata is the history recorded for computed layers.
type Metadata struct {
	CreatedBy string `json:"created_by"`
	Comment   string `json:"comment"`
}

// ReadAttrs reads and decodes a .attrs.json file through nixattrs, the
// builder commands' one reader.
func ReadAttrs(name string) (*Attrs, error) {
	var a Attrs
	raw, _, err := nixattrs.Read(name, &a)
	if err != nil {
		return nil, err
	}
	if err := strictParts(raw); err != nil {
		return nil, fmt.Errorf("structured attributes %s: %w", name, err)
	}
	return &a, nil
}

// ParseAttrs decodes the contents of a .attrs.json file.
func ParseAttrs(b []byte) (*Attrs, error) {
	var a Attrs
	if err := jsonfield.Lenient(b, &a); err != nil {
		return nil, err
	}
	if a.Outputs.Out == "" {
		return nil, fmt.Errorf("outputs.out: missing")
	}
	if err := strictParts(b); err != nil {
		return nil, err
	}
	return &a, nil
}

// strictParts decodes "perms" and "compression" again, rejecting unknown
// fields and checking the compression: a
// misspelt "mdoe" must fail the build, not be ignored. The other
// attributes hold everything else of the derivation and cannot be strict.
func strictParts(b []byte) error {
	var raw struct {
		Perms       json.RawMessage `json:"perms"`
		Compression json.RawMessage `json:"compression"`
	}
	if err := jsonfield.Lenient(b, &raw); err != nil {
		return err
	}
	if len(raw.Perms) > 0 {
		var perms []layers.Perm
		if err := jsonfield.Prefix("perms", jsonfield.Strict(raw.Perms, &perms)); err != nil {
			return err
		}
	}
	if len(raw.Compression) > 0 && string(raw.Compression) != "null" {
		var c layers.Compression
		if err := jsonfield.Prefix("compression", jsonfield.Strict(raw.Compression, &c)); err != nil {
			return err
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("compression.%w", err)
		}
	}
	return nil
}

// graph parses the closure graph.
func (a *Attrs) graph() (*closure.Graph, error) {
	if len(a.Closure) == 0 {
		return nil, fmt.Errorf("closure: missing (exportReferencesGraph.closure not set)")
	}
	return closure.Parse(a.Closure)
}

// config decodes the image config strictly; a missing or null config is
// empty.
func (a *Attrs) config() (ocispec.ImageConfig, error) {
	var c ocispec.ImageConfig
	if len(a.Config) == 0 || string(a.Config) == "null" {
		return c, nil
	}
	if err := jsonfield.Strict(a.Config, &c); err != nil {
		return c, jsonfield.Prefix("config", err)
	}
	return c, nil
}

// parseTime parses an RFC 3339 attribute; empty gives def.
func parseTime(field, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time such as 1970-01-01T00:00:01Z", field, s)
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("%s: %q is before 1970", field, s)
	}
	return t.UTC(), nil
}

// placeholder stands for a store path when only perms are validated.
const placeholder = layers.StoreDir + "/00000000000000000000000000000000-placeholder"

// checkPerms validates every perms rule up front, so a rule that no layer
// uses still fails the build, and a rule's path must be in the image.
func checkPerms(perms []layers.Perm, g *closure.Graph) error {
	if len(perms) == 0 {
		return nil
	}
	s := layers.Spec{Paths: []layers.Path{{Path: placeholder}}, Perms: perms}
	if err := s.Validate(); err != nil {
		return err // "perms[i]: regex …"
	}
	for i, p := range perms {
		if p.Path != "" && !g.Has(p.Path) {
			return fmt.Errorf("perms[%d].path: %s is %w", i, p.Path, closure.ErrNotInGraph)
		}
	}
	return nil
}
