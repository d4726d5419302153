package builder

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/closure"
	"github.com/nixpush/nixpush/layers/description"
	"github.com/nixpush/nixpush/layers/layering"
)

// Option configures a build.
type Option func(*options)

type options struct {
	root        string
	concurrency int
}

// WithRoot reads store paths, and layer files, below dir instead of "/".
// Tests use it for fixture stores.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// WithConcurrency hashes at most n layers at once; the default is the
// number of CPUs.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

func makeOptions(opts []Option) options {
	o := options{concurrency: runtime.NumCPU()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	return o
}

func (o options) layerOpts() []layers.Option {
	if o.root == "" {
		return nil
	}
	return []layers.Option{layers.WithRoot(o.root)}
}

// Default histories of computed layers.
const (
	createdByLayer = "nixpush buildLayer"
	createdByImage = "nixpush buildImage"
)

// BuildLayerFile computes the layer file a buildLayer derivation writes:
// the layers of a.Layers, then the layers of a.Deps and a.CopyToRoot.
func BuildLayerFile(ctx context.Context, a *Attrs, opts ...Option) (*description.LayerFile, error) {
	g, err := a.graph()
	if err != nil {
		return nil, err
	}
	h := description.History{CreatedBy: a.Metadata.CreatedBy, Comment: a.Metadata.Comment}
	if h.CreatedBy == "" {
		h.CreatedBy = createdByLayer
	}
	o := makeOptions(opts)
	g, err = ignoring(a, g, a.Deps, nil)
	if err != nil {
		return nil, err
	}
	plan, err := planLayers(a, g, a.Deps, nil, o)
	if err != nil {
		return nil, err
	}
	ls, err := hashAll(ctx, plan, h, a.Compression, o)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("buildLayer: nothing to put in a layer (deps, copyToRoot and layers are empty)")
	}
	return &description.LayerFile{Version: description.NeededVersion(ls), Layers: ls}, nil
}

// tagRe is the OCI distribution spec's tag grammar.
var tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// checkTag refuses an imageTag that is not a valid tag.
func checkTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return fmt.Errorf("imageTag: %q is not a valid tag (up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-')", tag)
	}
	return nil
}

// BuildImage computes the image description a buildImage derivation
// writes.
func BuildImage(ctx context.Context, a *Attrs, opts ...Option) (*description.Image, error) {
	img, _, err := buildImage(ctx, a, opts...)
	return img, err
}

// buildImage is BuildImage, also returning the closure graph.
func buildImage(ctx context.Context, a *Attrs, opts ...Option) (*description.Image, *closure.Graph, error) {
	if a.ImageName == "" {
		return nil, nil, fmt.Errorf("imageName: missing")
	}
	g, err := a.graph()
	if err != nil {
		return nil, nil, err
	}
	created, err := parseTime("created", a.Created, layers.DefaultMTime)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	o := makeOptions(opts)
	from, err := a.base(o)
	if err != nil {
		return nil, nil, err
	}
	plan, err := imagePlan(a, g, from, o)
	if err != nil {
		return nil, nil, err
	}
	if err := checkNixDatabase(a, g, plan); err != nil {
		return nil, nil, err
	}
	ls, err := hashAll(ctx, plan, description.History{CreatedBy: createdByImage}, a.Compression, o)
	if err != nil {
		return nil, nil, err
	}
	if from != nil {
		if ls, err = from.stack(ls); err != nil {
			return nil, nil, err
		}
	}
	if err := checkConfigRefs(a.Config, ls); err != nil {
		if a.IncludeStorePaths != nil && !*a.IncludeStorePaths {
			return nil, nil, fmt.Errorf("%w (includeStorePaths is false: the image holds no store path of its own)", err)
		}
		return nil, nil, err
	}
	img := &description.Image{
		Name:         a.ImageName,
		Architecture: a.Architecture,
		OS:           a.OS,
		Variant:      a.Variant,
		Created:      created,
		Config:       cfg,
		Annotations:  a.Annotations,
		Layers:       ls,
	}
	if a.ImageTag != nil {
		if err := checkTag(*a.ImageTag); err != nil {
			return nil, nil, err
		}
		img.Tag = *a.ImageTag
	}
	if from != nil {
		if err := from.apply(img, a.Config); err != nil {
			return nil, nil, err
		}
	}
	img.Version = img.NeededVersion()
	if err := img.Validate(); err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", a.ImageName, err)
	}
	return img, g, nil
}

// planLayers splits the closure into layers, hashing nothing.
//
// The Nix layers of a base image (from, when not nil) count as explicit
// layers: the store paths they hold are left out of the computed layers.
// The base's layers themselves are stacked below by base.stack once the
// layers are hashed.
func planLayers(a *Attrs, g *closure.Graph, deps []string, from *base, o options) ([]layering.Layer, error) {
	if err := checkPerms(a.Perms, g); err != nil {
		return nil, err
	}
	mtime, err := parseTime("mtime", a.MTime, layers.DefaultMTime)
	if err != nil {
		return nil, err
	}
	var explicit []description.Layer
	if from != nil {
		explicit = from.nixLayers()
	}
	for i, name := range a.Layers {
		if err := layers.ValidateStorePath(name); err != nil {
			return nil, fmt.Errorf("layers[%d]: %w", i, err)
		}
		// Read beneath the store directory, following no symlink.
		b, err := layers.ReadStoreFile(name, description.MaxFileSize, o.layerOpts()...)
		if err != nil {
			return nil, fmt.Errorf("layers[%d]: reading layer file: %w", i, err)
		}
		lf, err := description.ParseLayerFile(name, b)
		if err != nil {
			return nil, fmt.Errorf("layers[%d]: %w", i, err)
		}
		explicit = append(explicit, lf.Layers...)
	}
	maxLayers := a.MaxLayers
	if maxLayers == 0 {
		maxLayers = 1
	}
	plan, err := layering.Split(layering.Input{
		Graph:      g,
		Deps:       deps,
		CopyToRoot: a.CopyToRoot,
		Explicit:   explicit,
		MaxLayers:  maxLayers,
		Perms:      a.Perms,
		MTime:      mtime,
	})
	if err != nil {
		return nil, err
	}
	if a.IncludeStorePaths != nil && !*a.IncludeStorePaths {
		plan = rootOnly(plan)
	}
	return plan, nil
}

// hashAll hashes the layers that need it, o.concurrency at a time, and
// returns the descriptions of all layers in plan order. New layers are
// compressed as comp says (nil: not at all); a layer of a buildLayer keeps
// its own compression. Each layer's tar is written once, through sha256
// for its diffID and, when compressed, through the compressor into a
// second sha256 for its digest.
func hashAll(ctx context.Context, plan []layering.Layer, h description.History, comp *layers.Compression, o options) ([]description.Layer, error) {
	out := make([]description.Layer, len(plan))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(o.concurrency)
	for i, l := range plan {
		if !l.NeedsHash() {
			out[i] = *l.Source
			continue
		}
		hist := h
		if l.Source != nil {
			hist = l.Source.History
		}
		if l.Source == nil {
			l.Spec.Compression = comp
		}
		eg.Go(func() error {
			if err := l.Spec.Validate(); err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, describe(l.Spec), err)
			}
			sums, err := layers.Sum(ctx, l.Spec, o.layerOpts()...)
			if err != nil {
				return fmt.Errorf("hashing layer %d (%s): %w", i, describe(l.Spec), err)
			}
			out[i] = description.Layer{
				Spec:      l.Spec,
				Digest:    sums.Digest,
				Size:      sums.Size,
				DiffID:    sums.DiffID,
				MediaType: description.LayerMediaType(l.Spec.Compression),
				History:   hist,
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// describe names a layer by its first store path.
func describe(s layers.Spec) string {
	switch len(s.Paths) {
	case 0:
		return "no paths"
	case 1:
		return s.Paths[0].Path
	default:
		return fmt.Sprintf("%s and %d more", s.Paths[0].Path, len(s.Paths)-1)
	}
}

// WriteLayerFile reads the structured attributes in attrsFile, builds the
// layer file and writes it to outputs.out.
func WriteLayerFile(ctx context.Context, attrsFile string, opts ...Option) error {
	a, err := ReadAttrs(attrsFile)
	if err != nil {
		return err
	}
	lf, err := BuildLayerFile(ctx, a, opts...)
	if err != nil {
		return err
	}
	return writeJSON(a.Outputs.Out, lf)
}

// WriteImage reads the structured attributes in attrsFile, builds the
// image description and writes it to outputs.out.
func WriteImage(ctx context.Context, attrsFile string, opts ...Option) error {
	a, err := ReadAttrs(attrsFile)
	if err != nil {
		return err
	}
	img, g, err := buildImage(ctx, a, opts...)
	if err != nil {
		return err
	}
	if a.Outputs.SBOM != "" {
		if err := writeSBOM(a, img, g); err != nil {
			return err
		}
	}
	return writeJSON(a.Outputs.Out, img)
}

// WriteConfig reads the structured attributes in attrsFile and writes the
// "config" attribute, as JSON, to outputs.out.
func WriteConfig(ctx context.Context, attrsFile string) error {
	a, err := ReadAttrs(attrsFile)
	if err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	return writeJSON(a.Outputs.Out, cfg)
}

func writeJSON(name string, v any) error {
	b, err := description.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
