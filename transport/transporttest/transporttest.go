package transporttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File is one entry of a fixture directory.
type File struct {
	Data string // contents of a regular file
	Exec bool   // regular file is executable
	Link string // when set, a symlink to Link
	Dir  bool   // an empty directory
}

// AddStorePath writes files (relative path → File) into a directory named
// name and adds it to the Nix store with nix-store --add. It returns the
// store path with its NAR hash and size as Nix reports them.
func AddStorePath(t testing.TB, name string, files map[string]File) layers.Path {
	t.Helper()
	nixStore := testenv.Tool(t, "nix-store")
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case f.Dir:
			err = os.MkdirAll(p, 0o755)
		case f.Link != "":
			err = os.Symlink(f.Link, p)
		default:
			mode := os.FileMode(0o644)
			if f.Exec {
				mode = 0o755
			}
			err = os.WriteFile(p, []byte(f.Data), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sp := run(t, nixStore, "--add", dir)
	hash := run(t, nixStore, "-q", "--hash", sp)
	size, err := strconv.ParseUint(run(t, nixStore, "-q", "--size", sp), 10, 64)
	if err != nil {
		t.Fatalf("nix-store -q --size %s: %v", sp, err)
	}
	return layers.Path{Path: sp, NarHash: hash, NarSize: size}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(string(out))
}

// Created is the creation time of every test image.
var Created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Layer is a layer to describe: its store paths and perms, and how its
// tar is compressed (nil: an uncompressed tar).
type Layer struct {
	Paths       []layers.Path
	Perms       []layers.Perm
	Compression *layers.Compression
}

// Zstd and Gzip are compressions at their default levels, for Layer.
var (
	Zstd = &layers.Compression{Algorithm: layers.Zstd}
	Gzip = &layers.Compression{Algorithm: layers.Gzip}
)

// Describe makes an image description of ls, hashing each layer with
// layers.Sum (opts are passed to it, e.g. layers.WithRoot), written with
// the lowest version that holds its layers, as the builder writes it.
func Describe(t testing.TB, name string, config ocispec.ImageConfig, ls []Layer, opts ...layers.Option) *description.Image {
	t.Helper()
	img := &description.Image{
		Name:         name,
		Tag:          "test",
		Architecture: "amd64",
		OS:           "linux",
		Created:      Created,
		Config:       config,
	}
	for i, l := range ls {
		spec := layers.Spec{Paths: l.Paths, Perms: l.Perms, MTime: layers.DefaultMTime, Compression: l.Compression}
		sums, err := layers.Sum(context.Background(), spec, opts...)
		if err != nil {
			t.Fatalf("layer %d of %s: %v", i, name, err)
		}
		img.Layers = append(img.Layers, description.Layer{
			Spec: spec, Digest: sums.Digest, DiffID: sums.DiffID, Size: sums.Size,
			MediaType: description.LayerMediaType(l.Compression),
			History:   description.History{CreatedBy: "transporttest layer " + strconv.Itoa(i)},
		})
	}
	img.Version = description.NeededVersion(img.Layers)
	if err := img.Validate(); err != nil {
		t.Fatalf("description of %s: %v", name, err)
	}
	return img
}

// Write writes img to a file in a temporary directory and returns its path.
func Write(t testing.TB, img *description.Image) string {
	t.Helper()
	b, err := description.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
