package remoteverify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"

	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/registry"
)

// CompareIndex fetches the manifest ref resolves to and compares it with
// the index bi builds, digest first. When they differ and the registry
// serves an index, its fields are compared (annotations, …), then its
// images platform by platform: an image whose manifest digest matches
// is not read further; another is compared as Compare compares an image,
// its differences named "manifests[i] (os/arch).…". No layer is fetched.
func CompareIndex(ctx context.Context, bi *transport.BuiltIndex, ref string, opts ...registry.Option) (*Result, error) {
	f, err := fetch(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer f.src.Close()
	res := &Result{Reference: f.named.String(), Want: bi.Digest, Got: digest.FromBytes(f.manifest)}
	if res.Got == res.Want {
		res.Identical = true
		return res, nil
	}
	if err := compareIndex(ctx, f, bi, res); err != nil {
		return nil, fmt.Errorf("comparing with the index of %s: %w", f.named, err)
	}
	return res, nil
}

func compareIndex(ctx context.Context, f *fetched, bi *transport.BuiltIndex, res *Result) error {
	add := func(d Difference) { res.Differences = append(res.Differences, d) }
	if !manifest.MIMETypeIsMultiImage(manifest.NormalizedMIMEType(f.mimeType)) {
		add(Difference{Field: "mediaType", Want: ocispec.MediaTypeImageIndex, Got: f.mimeType,
			Note: "the registry serves one image; the description builds an index"})
		return nil
	}
	var want, have map[string]any
	if err := json.Unmarshal(bi.Manifest, &want); err != nil {
		return err
	}
	if err := json.Unmarshal(f.manifest, &have); err != nil {
		return fmt.Errorf("registry index: %w", err)
	}
	delete(want, "manifests")
	delete(have, "manifests")
	diffJSON("", want, have, add)

	var got ocispec.Index
	if err := json.Unmarshal(f.manifest, &got); err != nil {
		return fmt.Errorf("registry index: %w", err)
	}
	served := map[description.Platform]ocispec.Descriptor{}
	for _, m := range got.Manifests {
		if m.Platform != nil {
			served[platformOf(*m.Platform)] = m
		}
	}
	for i, m := range bi.Index.Manifests {
		field := fmt.Sprintf("manifests[%d] (%s)", i, m.Platform)
		g, ok := served[m.Platform]
		delete(served, m.Platform)
		switch {
		case !ok:
			add(Difference{Field: field, Want: m.Digest.String(), Got: "(none)", Note: "the registry's index has no image of this platform"})
			continue
		case g.Digest == m.Digest:
			continue
		}
		if err := g.Digest.Validate(); err != nil {
			return fmt.Errorf("%s: digest %q: %w", field, g.Digest, err)
		}
		man, mimeType, err := f.src.GetManifest(ctx, &g.Digest)
		if err != nil {
			return fmt.Errorf("reading %s@%s: %w", f.named.Name(), g.Digest, err)
		}
		if got := digest.FromBytes(man); got != g.Digest {
			return fmt.Errorf("%s: the registry served bytes with digest %s for %s", field, got, g.Digest)
		}
		add(Difference{Field: field, Want: m.Digest.String(), Got: g.Digest.String(), Note: "another image; its differences follow"})
		c := &comparison{ctx: ctx, src: f.src, built: bi.Images[i], res: res, prefix: field + "."}
		if err := c.manifest(man, mimeType); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	for _, m := range got.Manifests {
		if m.Platform == nil {
			add(Difference{Field: "manifests", Want: "(none)", Got: m.Digest.String(), Note: "an entry of the registry's index with no platform"})
			continue
		}
		if p := platformOf(*m.Platform); served[p].Digest == m.Digest && m.Digest != "" {
			add(Difference{Field: "manifests (" + p.String() + ")", Want: "(none)", Got: m.Digest.String(), Note: "only in the registry's index"})
		}
	}
	return nil
}

func platformOf(p ocispec.Platform) description.Platform {
	return description.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}
