package remoteverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
)

// ErrDiffers says the registry serves another manifest than the
// description builds; a *Result says what differs.
var ErrDiffers = errors.New("the registry serves another manifest than the description builds")

// Result is the outcome of a comparison.
type Result struct {
	// Reference is the registry reference, as given.
	Reference string `json:"reference"`
	// Want is the manifest digest the description builds; Got the
	// digest of the manifest the registry serves.
	Want digest.Digest `json:"want"`
	Got  digest.Digest `json:"got"`
	// Identical is true when the digests match; then Differences is
	// empty and nothing but the manifest was fetched.
	Identical   bool         `json:"identical"`
	Differences []Difference `json:"differences,omitempty"`
	// ConfigFetched says the registry's config blob was read (only when
	// the config digests differ).
	ConfigFetched bool `json:"configFetched"`
}

// Difference is one thing that differs between the manifest the
// description builds (Want) and the registry's (Got).
type Difference struct {
	// Field is where: a manifest field ("mediaType", "annotations"), a
	// config field by its JSON path ("config.Env[1]", "created"), or a
	// layer ("layers[2]").
	Field string `json:"field"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	// Paths are the store paths the description's layer holds, for a
	// layer.
	Paths []string `json:"paths,omitempty"`
	// Note says more, where there is more to say.
	Note string `json:"note,omitempty"`
}

// Err returns nil when the registry serves the description's manifest,
// else an error that is ErrDiffers.
func (r *Result) Err() error {
	if r.Identical {
		return nil
	}
	return fmt.Errorf("%s: %w (%d differences)", r.Reference, ErrDiffers, len(r.Differences))
}

// Compare fetches the manifest ref (REGISTRY/REPO:TAG or @DIGEST) resolves
// to and compares it with built's. opts say how the registry is reached,
// as for registry.Push.
func Compare(ctx context.Context, built *transport.Built, ref string, opts ...registry.Option) (*Result, error) {
	f, err := fetch(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer f.src.Close()
	res := &Result{Reference: f.named.String(), Want: built.ManifestDigest, Got: digest.FromBytes(f.manifest)}
	if res.Got == res.Want {
		res.Identical = true
		return res, nil
	}
	c := &comparison{ctx: ctx, src: f.src, built: built, res: res}
	if err := c.manifest(f.manifest, f.mimeType); err != nil {
		return nil, fmt.Errorf("comparing with the manifest of %s: %w", f.named, err)
	}
	return res, nil
}

// fetched is the manifest a registry reference resolves to, and the
// source it came from (for the config and, of an index, its instances).
type fetched struct {
	named    reference.Named
	src      types.ImageSource
	manifest []byte
	mimeType string
}

// fetch reads the manifest ref resolves to. The caller closes f.src.
func fetch(ctx context.Context, ref string, opts []registry.Option) (*fetched, error) {
	named, err := registry.ParseSource(ref)
	if err != nil {
		return nil, err
	}
	cfg, err := registry.NewConfig(opts...)
	if err != nil {
		return nil, err
	}
	sys, err := cfg.SystemContext(named)
	if err != nil {
		return nil, err
	}
	dref, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("registry reference %s: %w", named, err)
	}
	src, err := dref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", named, err)
	}
	got, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("reading the manifest of %s: %w", named, err)
	}
	return &fetched{named: named, src: src, manifest: got, mimeType: mimeType}, nil
}

// comparison compares one image's manifest with a registry's.
type comparison struct {
	ctx   context.Context
	src   types.ImageSource
	built *transport.Built
	res   *Result
	// prefix names the image within an index ("manifests[1] (linux/arm64)."),
	// before each field.
	prefix string
}

func (c *comparison) add(d Difference) {
	d.Field = c.prefix + d.Field
	c.res.Differences = append(c.res.Differences, d)
}

// manifest compares the registry's manifest got, field by field, then
// the config and the layers.
func (c *comparison) manifest(got []byte, mimeType string) error {
	if manifest.MIMETypeIsMultiImage(manifest.NormalizedMIMEType(mimeType)) {
		c.add(Difference{Field: "mediaType", Want: ocispec.MediaTypeImageManifest, Got: mimeType,
			Note: "the registry serves an index (a manifest list); the description builds one image"})
		return nil
	}
	var want, have map[string]any
	if err := json.Unmarshal(c.built.Manifest, &want); err != nil {
		return err
	}
	if err := json.Unmarshal(got, &have); err != nil {
		return fmt.Errorf("registry manifest: %w", err)
	}
	// Every top-level field but config and layers, compared as JSON.
	delete(want, "config")
	delete(want, "layers")
	delete(have, "config")
	delete(have, "layers")
	diffJSON("", want, have, c.add)

	var m ocispec.Manifest
	if err := json.Unmarshal(got, &m); err != nil {
		return fmt.Errorf("registry manifest: %w", err)
	}
	var gotDiffIDs []digest.Digest
	if m.Config.Digest != c.built.ConfigDigest {
		ids, err := c.config(m.Config)
		if err != nil {
			return err
		}
		gotDiffIDs = ids
	}
	c.layers(m.Layers, gotDiffIDs)
	return nil
}

// config fetches the registry's config blob and compares it with the
// description's, field by field, except rootfs.diff_ids, which layers
// reports with the layer they belong to. It returns the registry's diff
// IDs.
func (c *comparison) config(desc ocispec.Descriptor) ([]digest.Digest, error) {
	c.res.ConfigFetched = true
	if desc.Size < 0 || desc.Size > description.MaxConfigSize {
		c.add(Difference{Field: "config", Want: c.built.ConfigDigest.String(), Got: desc.Digest.String(),
			Note: fmt.Sprintf("the registry's config is %d bytes: not fetched", desc.Size)})
		return nil, nil
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("config digest %q: %w", desc.Digest, err)
	}
	rc, _, err := c.src.GetBlob(c.ctx, types.BlobInfo{Digest: desc.Digest, Size: desc.Size}, none.NoCache)
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, description.MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %w", desc.Digest, err)
	}
	if got := digest.FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("config %s: the registry served bytes with digest %s", desc.Digest, got)
	}
	var want, have map[string]any
	if err := json.Unmarshal(c.built.Config, &want); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &have); err != nil {
		return nil, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	var rootfs struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	json.Unmarshal(b, &rootfs) //nolint:errcheck // parsed above; a wrong type leaves it empty
	for _, m := range []map[string]any{want, have} {
		if r, ok := m["rootfs"].(map[string]any); ok {
			delete(r, "diff_ids")
		}
	}
	diffJSON("", want, have, c.add)
	return rootfs.RootFS.DiffIDs, nil
}

// layers compares the registry's layers with the description's, by
// index.
func (c *comparison) layers(got []ocispec.Descriptor, gotDiffIDs []digest.Digest) {
	ls := c.built.Image.Layers
	if len(got) != len(ls) {
		c.add(Difference{Field: "layers", Want: fmt.Sprintf("%d layers", len(ls)), Got: fmt.Sprintf("%d layers", len(got))})
	}
	for i := 0; i < max(len(got), len(ls)); i++ {
		field := fmt.Sprintf("layers[%d]", i)
		switch {
		case i >= len(ls):
			c.add(Difference{Field: field, Want: "(none)", Got: describe(got[i]), Note: "only in the registry's manifest"})
			continue
		case i >= len(got):
			c.add(Difference{Field: field, Want: describe(layerDescriptor(ls[i])), Got: "(none)", Paths: paths(ls[i])})
			continue
		}
		want := layerDescriptor(ls[i])
		if want.Digest == got[i].Digest && want.Size == got[i].Size && want.MediaType == got[i].MediaType {
			continue
		}
		d := Difference{Field: field, Want: describe(want), Got: describe(got[i]), Paths: paths(ls[i])}
		if i < len(gotDiffIDs) && gotDiffIDs[i] == ls[i].DiffID && want.Digest != got[i].Digest {
			d.Note = "same diff ID: the same tar, compressed otherwise"
		}
		c.add(d)
	}
}

// describe shows a layer descriptor: digest, size and media type.
func describe(d ocispec.Descriptor) string {
	return fmt.Sprintf("%s (%d bytes, %s)", d.Digest, d.Size, d.MediaType)
}

// paths lists the store paths a description's layer holds.
func paths(l description.Layer) []string {
	out := make([]string, 0, len(l.Paths))
	for _, p := range l.Paths {
		out = append(out, p.Path)
	}
	return out
}

// layerDescriptor is the manifest descriptor of a description's layer.
func layerDescriptor(l description.Layer) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
}

// WriteText writes r for people: "identical" and the digest, or
// "differs" and each difference.
func (r *Result) WriteText(w io.Writer, source string) error {
	if r.Identical {
		_, err := fmt.Fprintf(w, "identical: %s serves %s, the manifest %s builds\n", r.Reference, r.Got, source)
		return err
	}
	fmt.Fprintf(w, "differs: %s serves %s; %s builds %s\n", r.Reference, r.Got, source, r.Want)
	for _, d := range r.Differences {
		fmt.Fprintf(w, "  %s: description %s, registry %s\n", d.Field, d.Want, d.Got)
		if d.Note != "" {
			fmt.Fprintf(w, "      (%s)\n", d.Note)
		}
		for _, p := range d.Paths {
			fmt.Fprintf(w, "      holds %s\n", p)
		}
	}
	if len(r.Differences) == 0 {
		// Same fields, other bytes (key order, white space).
		fmt.Fprintln(w, "  the manifests hold the same fields, encoded otherwise")
	}
	return nil
}
