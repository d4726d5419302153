package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// base is the image fromImage names: its layers, bottom first, its config
// and its history.
type base struct {
	from     string // the store path, for messages
	layers   []description.Layer
	platform description.Platform
	config   ocispec.ImageConfig
	// history is the base's config history, when it has one that
	// matches its layers (BaseHistory).
	history []ocispec.History
}

// maxBaseJSON is the largest index.json, manifest or config of a pulled
// layout read.
const maxBaseJSON = 4 << 20

// Media types of Docker schema 2 images, which a pulled layout may hold.
const (
	dockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	dockerGzipLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// createdByBase is the history of a base layer whose image has none.
const createdByBase = "nixpush fromImage"

// base reads the image's fromImage, if it has one.
func (a *Attrs) base(o options) (*base, error) {
	if a.FromImage == "" {
		return nil, nil
	}
	return readBase(a.FromImage, o)
}

// readBase reads fromImage: a pullImage output (an OCI layout directory)
// or a nixpush image description (a file). Everything is read beneath the
// store path, following no symlink.
func readBase(from string, o options) (*base, error) {
	if err := layers.ValidateStorePath(from); err != nil {
		return nil, fmt.Errorf("fromImage: %w", err)
	}
	f, _, err := layers.OpenFile(from, "index.json", o.layerOpts()...)
	switch {
	case err == nil:
		f.Close()
		b, err := readLayout(from, o)
		if err != nil {
			return nil, fmt.Errorf("fromImage %s: %w", from, err)
		}
		return b, nil
	case !errors.Is(err, unix.ENOTDIR):
		// A directory (or a symlink): no usable layout.
		return nil, fmt.Errorf("fromImage %s: not a pullImage output (an OCI layout): %w", from, err)
	}
	// A file: a description, read as confined as the layout.
	b, err := layers.ReadStoreFile(from, description.MaxFileSize, o.layerOpts()...)
	if err != nil {
		return nil, fmt.Errorf("fromImage: %w", err)
	}
	img, err := description.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("fromImage %s: neither a pullImage output (an OCI layout) nor a nixpush image description: %w", from, err)
	}
	return &base{
		from:     from,
		layers:   img.Layers,
		platform: img.Platform(),
		config:   img.Config,
		history:  img.BaseHistory,
	}, nil
}

// readJSON reads and decodes a small file of the layout; want, when set,
// is its digest.
func readJSON(from, file string, want digest.Digest, v any, o options) error {
	f, size, err := layers.OpenFile(from, file, o.layerOpts()...)
	if err != nil {
		return err
	}
	defer f.Close()
	if size > maxBaseJSON {
		return fmt.Errorf("%s: %d bytes, more than %d", file, size, maxBaseJSON)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBaseJSON))
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	if want != "" && digest.FromBytes(b) != want {
		return fmt.Errorf("%s: hashes to %s, not %s", file, digest.FromBytes(b), want)
	}
	if err := jsonfield.Lenient(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// blobFile is where a layout holds the blob d.
func blobFile(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %q is not a sha256 digest", d)
	}
	return "blobs/sha256/" + d.Encoded(), nil
}

// readLayout reads a pulled OCI layout: its one manifest (or the one for
// the image's platform), config and layer descriptors. The layer files
// are not hashed: pullImage checked them, and Nix checks the output's
// hash; their sizes are checked.
func readLayout(from string, o options) (*base, error) {
	var idx ocispec.Index
	if err := readJSON(from, "index.json", "", &idx, o); err != nil {
		return nil, err
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("index.json: %d manifests; a pulled layout has one", len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.MediaType != ocispec.MediaTypeImageManifest && md.MediaType != dockerManifest {
		return nil, fmt.Errorf("index.json: manifests[0].mediaType: %q is not an image manifest", md.MediaType)
	}
	mfile, err := blobFile(md.Digest)
	if err != nil {
		return nil, fmt.Errorf("index.json: manifests[0].digest: %w", err)
	}
	var m ocispec.Manifest
	if err := readJSON(from, mfile, md.Digest, &m, o); err != nil {
		return nil, err
	}
	cfile, err := blobFile(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: config.digest: %w", md.Digest, err)
	}
	var cfg ocispec.Image
	if err := readJSON(from, cfile, m.Config.Digest, &cfg, o); err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config %s: rootfs.diff_ids has %d entries for %d layers", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	repo := md.Annotations[description.AnnotationPulledName]
	b := &base{from: from, platform: description.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, config: cfg.Config}
	for i, l := range m.Layers {
		file, err := blobFile(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: layers[%d].digest: %w", md.Digest, i, err)
		}
		f, size, err := layers.OpenFile(from, file, o.layerOpts()...)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: layers[%d]: %w", md.Digest, i, err)
		}
		f.Close()
		if size != l.Size {
			return nil, fmt.Errorf("manifest %s: layers[%d]: %s is %d bytes, the manifest says %d", md.Digest, i, file, size, l.Size)
		}
		mt := l.MediaType
		if mt == dockerGzipLayer {
			mt = ocispec.MediaTypeImageLayerGzip // the same bytes
		}
		b.layers = append(b.layers, description.Layer{
			Blob:      &description.BlobRef{Path: from, File: file, Repository: repo},
			Digest:    l.Digest,
			Size:      l.Size,
			DiffID:    cfg.RootFS.DiffIDs[i],
			MediaType: mt,
		})
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(cfg.History) > 0 && nonEmpty == len(m.Layers) {
		b.history = cfg.History
	} else {
		for i := range b.layers {
			b.layers[i].History = description.History{CreatedBy: createdByBase, Comment: repo}
		}
	}
	return b, nil
}

// checkPlatform fails when the base is of another os or architecture
// than the image; a base's variant is taken when the image has none.
func (b *base) checkPlatform(img *description.Image) error {
	p := b.platform
	if p.OS != img.OS || p.Architecture != img.Architecture || (img.Variant != "" && p.Variant != "" && p.Variant != img.Variant) {
		return fmt.Errorf("fromImage %s: the base image is %s, the image %s (pull the base for the image's platform, or set arch)",
			b.from, p, img.Platform())
	}
	if img.Variant == "" {
		img.Variant = p.Variant
	}
	return nil
}

// mergeConfig starts from the base's config and applies the image's:
// Env by variable name and Labels by key (the image's value wins), every
// other field the image sets replaces the base's; an Entrypoint set
// without a Cmd clears the base's Cmd (Docker's rule). set are the
// fields the image's config names (a field set to [] clears it).
func mergeConfig(base, img ocispec.ImageConfig, set map[string]bool) ocispec.ImageConfig {
	out := base
	out.Env = mergeEnv(base.Env, img.Env)
	if len(base.Labels) > 0 || len(img.Labels) > 0 {
		out.Labels = map[string]string{}
		for k, v := range base.Labels {
			out.Labels[k] = v
		}
		for k, v := range img.Labels {
			out.Labels[k] = v
		}
	}
	if set["Entrypoint"] {
		out.Entrypoint = img.Entrypoint
		if !set["Cmd"] {
			out.Cmd = nil
		}
	}
	if set["Cmd"] {
		out.Cmd = img.Cmd
	}
	if set["User"] {
		out.User = img.User
	}
	if set["WorkingDir"] {
		out.WorkingDir = img.WorkingDir
	}
	if set["StopSignal"] {
		out.StopSignal = img.StopSignal
	}
	if set["ExposedPorts"] {
		out.ExposedPorts = img.ExposedPorts
	}
	if set["Volumes"] {
		out.Volumes = img.Volumes
	}
	if set["ArgsEscaped"] {
		out.ArgsEscaped = img.ArgsEscaped //nolint:staticcheck // kept as the base has it
	}
	return out
}

// mergeEnv merges env lists by variable name: the base's order, each
// variable the image sets replaced in place, the image's new ones after.
func mergeEnv(base, img []string) []string {
	if len(base) == 0 && len(img) == 0 {
		return nil
	}
	out := append([]string(nil), base...)
	at := map[string]int{}
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		at[k] = i
	}
	for _, e := range img {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := at[k]; ok {
			out[i] = e
			continue
		}
		at[k] = len(out)
		out = append(out, e)
	}
	return out
}

// configKeys are the fields the image's config names, as encoding/json
// matches keys when it decodes the config (case-insensitively):
// "entrypoint" sets Entrypoint.
func configKeys(raw json.RawMessage) (map[string]bool, error) {
	set := map[string]bool{}
	if len(raw) == 0 || string(raw) == "null" {
		return set, nil
	}
	var named struct {
		User, Env, Entrypoint, Cmd, WorkingDir, StopSignal json.RawMessage
		ExposedPorts, Volumes, Labels, ArgsEscaped         json.RawMessage
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return nil, jsonfield.Prefix("config", err)
	}
	for k, v := range map[string]json.RawMessage{
		"User": named.User, "Env": named.Env, "Entrypoint": named.Entrypoint, "Cmd": named.Cmd,
		"WorkingDir": named.WorkingDir, "StopSignal": named.StopSignal, "ExposedPorts": named.ExposedPorts,
		"Volumes": named.Volumes, "Labels": named.Labels, "ArgsEscaped": named.ArgsEscaped,
	} {
		if v != nil {
			set[k] = true
		}
	}
	return set, nil
}

// nixLayers are the base's layers of store paths (a nixpush base's), to
// be treated as explicit layers: their paths are not placed again.
func (b *base) nixLayers() []description.Layer {
	var out []description.Layer
	for _, l := range b.layers {
		if l.Blob == nil {
			out = append(out, l)
		}
	}
	return out
}

// stack puts the base's layers first, as the base has them, then the
// image's own: ls without the base's Nix layers, which came through the
// layering as explicit layers.
func (b *base) stack(ls []description.Layer) ([]description.Layer, error) {
	inBase := map[digest.Digest]bool{}
	for _, l := range b.layers {
		inBase[l.Digest] = true
	}
	out := append([]description.Layer(nil), b.layers...)
	own := 0
	for _, l := range ls {
		if !inBase[l.Digest] {
			out = append(out, l)
			own++
		}
	}
	if len(out) > description.MaxLayers {
		return nil, fmt.Errorf("fromImage %s: the base's %d layers and the image's %d make %d, more than the %d an overlay filesystem can stack (lower maxLayers): %w",
			b.from, len(b.layers), own, len(out), description.MaxLayers, description.ErrTooManyLayers)
	}
	return out, nil
}

// apply makes img an image on the base: its platform checked, its config
// merged onto the base's, the base's history first.
func (b *base) apply(img *description.Image, raw json.RawMessage) error {
	if err := b.checkPlatform(img); err != nil {
		return err
	}
	set, err := configKeys(raw)
	if err != nil {
		return err
	}
	img.Config = mergeConfig(b.config, img.Config, set)
	img.BaseHistory = b.history
	return nil
}
