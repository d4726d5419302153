package nix_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// exampleWith builds an attribute of nix/examples with its compression
// argument set to the Nix expression compression; check tells nix-build to
// build it again and compare.
func (e env) exampleWith(t *testing.T, attr, compression string, check bool) (string, error) {
	t.Helper()
	args := append([]string{filepath.Join(e.repo, "nix", "examples"), "-A", attr}, e.args()...)
	args = append(args, "--arg", "compression", compression)
	if check {
		args = append([]string{"--check"}, args...)
	}
	return testenv.NixBuild(t, args...)
}

// verify runs the nixpush that Nix built the image with: `nixpush verify`
// re-creates every layer's blob from the store and compares it.
func (e env) verify(t *testing.T, image string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(e.nixpush, "bin", "nixpush"), "verify", image).CombinedOutput()
	if err != nil {
		t.Errorf("nixpush verify %s: %v\n%s", image, err, out)
	}
}

// readImage reads an image description (and validates it).
func readImage(t *testing.T, name string) *description.Image {
	t.Helper()
	img, err := description.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// decompressedDigest streams a layer's blob from the store through the
// algorithm's own command-line tool (zstd -dc, gzip -dc: not the Go
// decoders) and returns the sha256 of what comes out.
func decompressedDigest(t *testing.T, l description.Layer) digest.Digest {
	t.Helper()
	blob := layers.Open(context.Background(), l.Spec, l.Digest, l.Size)
	defer blob.Close()
	cmd := exec.Command(testenv.Tool(t, l.Compression.Algorithm), "-dc")
	cmd.Stdin = blob
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, stdout); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s -dc of %s: %v\n%s", l.Compression.Algorithm, l.Digest, err, stderr.String())
	}
	return digest.NewDigest(digest.SHA256, h)
}

// TestCompressedExamples builds the layered example (a shared buildLayer
// layer under the image's own) uncompressed and with each compression, and
// checks that only the blobs change: the tars, and so the diffIDs, stay.
func TestCompressedExamples(t *testing.T) {
	e := setup(t)
	plainOut, err := e.exampleWith(t, "layered", `"none"`, false)
	if err != nil {
		t.Fatal(err)
	}
	// "none" leaves the derivation as it was without the argument.
	if def := e.example(t, "layered"); def != plainOut {
		t.Errorf(`compression = "none" gave %s, no argument %s`, plainOut, def)
	}
	plain := readImage(t, plainOut)
	check(t, plainOut, true)
	if v := layersVersion(plain); v != 1 {
		t.Errorf("uncompressed image has version %d without its SBOM, want 1", v)
	}
	for i, l := range plain.Layers {
		if l.Compression != nil || l.MediaType != description.MediaTypeLayer || l.Digest != l.DiffID {
			t.Errorf("uncompressed layer %d: compression %v, media type %s, digest %s, diffID %s",
				i, l.Compression, l.MediaType, l.Digest, l.DiffID)
		}
	}

	tests := []struct {
		name, expr string
		want       layers.Compression
	}{
		{"zstd", `"zstd"`, layers.Compression{Algorithm: layers.Zstd}},
		{"gzip", `"gzip"`, layers.Compression{Algorithm: layers.Gzip}},
		{"zstd-19", `{ algorithm = "zstd"; level = 19; }`, layers.Compression{Algorithm: layers.Zstd, Level: 19}},
		{"gzip-1", `{ algorithm = "gzip"; level = 1; }`, layers.Compression{Algorithm: layers.Gzip, Level: 1}},
	}
	seen := map[digest.Digest]string{}
	for _, l := range plain.Layers {
		seen[l.Digest] = "none"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.exampleWith(t, "layered", tt.expr, false)
			if err != nil {
				t.Fatal(err)
			}
			img := readImage(t, out)
			check(t, out, true) // every blob re-hashed from the store
			if v := layersVersion(img); v != 2 {
				t.Errorf("version %d without the SBOM, want 2", v)
			}
			if len(img.Layers) != len(plain.Layers) {
				t.Fatalf("%d layers, uncompressed %d", len(img.Layers), len(plain.Layers))
			}
			want := description.LayerMediaType(&tt.want)
			for i, l := range img.Layers {
				if l.Compression == nil || *l.Compression != tt.want {
					t.Errorf("layer %d: compression %+v, want %+v", i, l.Compression, tt.want)
					continue
				}
				if l.MediaType != want {
					t.Errorf("layer %d: media type %s, want %s", i, l.MediaType, want)
				}
				// The same tar as the uncompressed image's layer.
				if l.DiffID != plain.Layers[i].DiffID {
					t.Errorf("layer %d: diffID %s, uncompressed %s", i, l.DiffID, plain.Layers[i].DiffID)
				}
				if l.Digest == l.DiffID || l.Size >= plain.Layers[i].Size {
					t.Errorf("layer %d: digest %s (%d bytes), diffID %s (%d bytes): not compressed",
						i, l.Digest, l.Size, l.DiffID, plain.Layers[i].Size)
				}
				if prev, ok := seen[l.Digest]; ok {
					t.Errorf("layer %d: digest %s is also a layer's of %s", i, l.Digest, prev)
				}
				seen[l.Digest] = tt.name
				if got := decompressedDigest(t, l); got != l.DiffID {
					t.Errorf("layer %d: %s -dc gives %s, want the diffID %s", i, l.Compression.Algorithm, got, l.DiffID)
				}
			}
			e.verify(t, out)
			// The same inputs build the same bytes again.
			if _, err := e.exampleWith(t, "layered", tt.expr, true); err != nil {
				t.Errorf("rebuild differs: %v", err)
			}
		})
	}
}

// TestCompressionStacking: the layers of a buildLayer keep their own
// compression in an image, whatever the image's.
func TestCompressionStacking(t *testing.T) {
	e := setup(t)
	body := `rec {
  gz = np.buildLayer { deps = [ bb ]; compression = "gzip"; };
  zs = np.buildLayer { deps = [ ex.hello ]; compression = "zstd"; };
  plain = np.buildLayer { deps = [ bb ]; };
  # A gzip layer under an image that compresses nothing.
  keeps = np.buildImage { name = "keeps"; layers = [ gz ]; copyToRoot = [ ex.rootfs ]; };
  # zs's layer loses busybox to gz and is hashed again, as zstd.
  siblings = np.buildImage { name = "siblings"; layers = [ gz zs ]; };
  # An uncompressed layer under an image that compresses its own.
  mixed = np.buildImage {
    name = "mixed";
    layers = [ plain ];
    copyToRoot = [ ex.rootfs ];
    compression = { algorithm = "zstd"; level = 19; };
  };
}`
	zstd19 := &layers.Compression{Algorithm: layers.Zstd, Level: 19}
	gzip := &layers.Compression{Algorithm: layers.Gzip}
	zstd := &layers.Compression{Algorithm: layers.Zstd}
	tests := []struct {
		attr    string
		version int
		want    []*layers.Compression
		names   [][]string
	}{
		{"keeps", 2, []*layers.Compression{gzip, nil}, [][]string{{"busybox"}, {"rootfs@/"}}},
		{"siblings", 2, []*layers.Compression{gzip, zstd}, [][]string{{"busybox"}, {"hello"}}},
		{"mixed", 2, []*layers.Compression{nil, zstd19}, [][]string{{"busybox"}, {"rootfs@/"}}},
	}
	gzOut, err := e.expr(t, body, "gz")
	if err != nil {
		t.Fatal(err)
	}
	gzLayer := check(t, gzOut, false)[0]
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			out, err := e.expr(t, body, tt.attr)
			if err != nil {
				t.Fatal(err)
			}
			ls := check(t, out, true)
			if got := names(ls); !reflect.DeepEqual(got, tt.names) {
				t.Fatalf("layers = %v, want %v", got, tt.names)
			}
			if v := layersVersion(readImage(t, out)); v != tt.version {
				t.Errorf("version %d, want %d", v, tt.version)
			}
			for i, l := range ls {
				if !reflect.DeepEqual(l.Compression, tt.want[i]) {
					t.Errorf("layer %d: compression %+v, want %+v", i, l.Compression, tt.want[i])
				}
				if (l.Compression == nil) != (l.Digest == l.DiffID) {
					t.Errorf("layer %d: compression %+v, digest %s, diffID %s", i, l.Compression, l.Digest, l.DiffID)
				}
			}
			if tt.want[0] == gzip && !reflect.DeepEqual(ls[0], gzLayer) {
				t.Errorf("gz's layer changed on its way into the image:\n%+v\nwas\n%+v", ls[0], gzLayer)
			}
			e.verify(t, out)
		})
	}
}

// TestBadCompression: a value nixpush does not know fails the evaluation,
// naming the argument; one that reaches the builder anyway (the attribute
// set directly) fails the build, naming it too.
func TestBadCompression(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, body, want string
		built            bool // fails in the builder, not in evaluation
	}{
		{"unknown algorithm",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; compression = "xz"; }`,
			`nixpush: compression: "xz" is not "none", "zstd", "gzip"`, false},
		{"zstd level too high",
			`np.buildLayer { deps = [ bb ]; compression = { algorithm = "zstd"; level = 30; }; }`,
			"nixpush: compression.level: 30 is not a zstd level (1 to 22", false},
		{"gzip level 0",
			`np.buildImage { name = "x"; copyToRoot = [ ex.rootfs ]; compression = { algorithm = "gzip"; level = 0; }; }`,
			"nixpush: compression.level: 0 is not a gzip level (1 to 9", false},
		{"level not a number",
			`np.buildLayer { deps = [ bb ]; compression = { algorithm = "zstd"; level = "19"; }; }`,
			`nixpush: compression.level: "19" is not an integer`, false},
		{"misspelt attribute",
			`np.buildLayer { deps = [ bb ]; compression = { algorithm = "zstd"; levle = 19; }; }`,
			"nixpush: compression.levle: unknown attribute", false},
		{"no algorithm",
			`np.buildLayer { deps = [ bb ]; compression = { level = 19; }; }`,
			"nixpush: compression.algorithm: missing", false},
		{"level without compression",
			`np.buildLayer { deps = [ bb ]; compression = { algorithm = "none"; level = 19; }; }`,
			`nixpush: compression.level: given, but algorithm is "none"`, false},
		{"not a string or set",
			`np.buildLayer { deps = [ bb ]; compression = true; }`,
			"nixpush: compression: a bool is not", false},
		// Past the Nix checks: the builder's own.
		{"builder: level too high",
			`let l = np.buildLayer { deps = [ bb ]; }; in builtins.derivation (l.drvAttrs // { compression = { algorithm = "zstd"; level = 30; }; })`,
			"compression.level: 30 is not a zstd level", true},
		{"builder: unknown field",
			`let l = np.buildLayer { deps = [ bb ]; }; in builtins.derivation (l.drvAttrs // { compression = { algorithm = "zstd"; levle = 19; }; })`,
			"compression.levle: unknown field", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.expr(t, tt.body, "")
			if err == nil {
				t.Fatalf("built %s, want a failure naming %q", out, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not name %q:\n%v", tt.want, err)
			}
			if built := strings.Contains(err.Error(), "builder for"); built != tt.built {
				t.Fatalf("failed in the builder: %v, want %v:\n%v", built, tt.built, err)
			}
		})
	}
}

// TestCompressionArgument: every spelling of a compression gives the
// builder the same attribute, and "none" gives none (the derivation of an
// uncompressed image is what it was before the argument existed).
func TestCompressionArgument(t *testing.T) {
	e := setup(t)
	tests := []struct{ expr, want string }{
		{`"none"`, "absent"},
		{`null`, "absent"},
		{`{ algorithm = "none"; }`, "absent"},
		{`"zstd"`, `{"algorithm":"zstd"}`},
		{`{ algorithm = "zstd"; }`, `{"algorithm":"zstd"}`},
		{`"gzip"`, `{"algorithm":"gzip"}`},
		{`{ algorithm = "gzip"; level = 9; }`, `{"algorithm":"gzip","level":9}`},
		{`{ algorithm = "zstd"; level = 22; }`, `{"algorithm":"zstd","level":22}`},
	}
	for _, tt := range tests {
		for _, fn := range []string{`np.buildLayer { deps = [ bb ]; `, `np.buildImage { name = "x"; `} {
			src := fmt.Sprintf(`(import %q { nixpush = %s; busybox = %s; }) // { np = import %q { nixpush = %s; }; }`,
				filepath.Join(e.repo, "nix", "examples"), e.nixpush, e.busybox, filepath.Join(e.repo, "nix"), e.nixpush)
			expr := fmt.Sprintf(`let ex = %s; np = ex.np; bb = ex.busybox; d = %s compression = %s; }; in
				if d ? compression then builtins.toJSON d.compression else "absent"`, src, fn, tt.expr)
			got, err := testenv.Nix(t, "nix-instantiate", "--eval", "--strict", "-E", expr)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%q", tt.want); got != want {
				t.Errorf("%s compression = %s; }: %s, want %s", fn, tt.expr, got, want)
			}
		}
	}
}
