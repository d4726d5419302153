package imagecopy_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/internal/testenv"
	"github.com/nixpush/nixpush/transport"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
	"github.com/nixpush/nixpush/transport/transporttest"
)

// TestStoredSizeMismatch copies descriptions whose layer has the digest of
// a layer the registry already holds but another size: the copy fails
// naming the layer and both sizes, whether the registry has the blob in
// the destination repository (HEAD) or mounts it from another one
// (--mount-from), and no manifest is written.
func TestStoredSizeMismatch(t *testing.T) {
	reg := testenv.StartRegistry(t)
	f := newFixture(t, "fixture")
	opts := statelessOpts(t, reg)
	pushNix(t, f, "docker://"+reg.Host+"/good:v1", opts...)
	real := f.img.Layers[1].Size

	tests := []struct {
		name string
		repo string
		size int64
		opts []imagecopy.Option
	}{
		{"larger, in the repository", "good", 8 << 30, nil},
		{"smaller, in the repository", "good", real - 1, nil},
		{"larger, mount-from", "other", 8 << 30, []imagecopy.Option{imagecopy.WithMountFrom("good")}},
		{"smaller, mount-from", "another", real / 2, []imagecopy.Option{imagecopy.WithMountFrom("good")}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := *f.img
			bad.Layers = append(bad.Layers[:0:0], f.img.Layers...)
			bad.Layers[1].Size = tc.size
			ref, err := transport.NewReference(transporttest.Write(t, &bad))
			if err != nil {
				t.Fatal(err)
			}
			tag := "bad" + strconv.Itoa(i)
			dest, err := imagecopy.ParseReference("docker://" + reg.Host + "/" + tc.repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			mark := reg.Mark()
			_, err = imagecopy.CopyImage(context.Background(), ref, dest, append(append(opts, imagecopy.WithRegistryOptions(registry.WithRetry(2, 1))), tc.opts...)...)
			var se *transport.SizeError
			if !errors.As(err, &se) || se.Index != 1 || se.Described != tc.size || se.Stored != real {
				t.Fatalf("got %v, want a *transport.SizeError for layers[1]: %d described, %d stored", err, tc.size, real)
			}
			t.Logf("copy failed as it should: %v", err)
			for _, w := range []string{"layers[1] (" + f.img.Layers[1].Digest.String() + ")", strconv.FormatInt(tc.size, 10), strconv.FormatInt(real, 10), "description's size is wrong"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q", w)
				}
			}
			reqs := reg.Requests(mark)
			mounted := false
			for _, q := range reqs {
				// (The PUT of the earlier push may be logged late.)
				if q.IsManifestWrite() && strings.HasSuffix(q.Path, "/"+tag) {
					t.Errorf("a manifest was written: %s", q)
				}
				if u, err := url.Parse(q.Path); err == nil && u.Query().Get("mount") != "" && q.Status == http.StatusCreated {
					mounted = true
				}
			}
			if tc.repo != "good" && !mounted {
				t.Errorf("the blob was not mounted, so the mount path was not tested; requests:\n%v", reqs)
			}
			noManifest(t, reg, tc.repo, tag)
		})
	}
}

// noManifest checks that the registry serves no manifest for repo:tag.
func noManifest(t *testing.T, reg *testenv.Registry, repo, tag string) {
	t.Helper()
	c, err := reg.Client()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Head(reg.URL() + "/v2/" + repo + "/manifests/" + tag)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("%s:%s: HEAD answered %s, want 404: a manifest was published", repo, tag, res.Status)
	}
}
