package push

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
)

// TestReporter feeds containers/image progress events to both renderers.
func TestReporter(t *testing.T) {
	layer := types.BlobInfo{Digest: digest.FromString("layer"), Size: 4 << 20}
	skipped := types.BlobInfo{Digest: digest.FromString("skipped"), Size: 100}
	names := blobNames{byDigest: map[digest.Digest]string{layer.Digest: "layer 1/2 hello"}, total: layer.Size + skipped.Size}
	events := []types.ProgressProperties{
		{Event: types.ProgressEventSkipped, Artifact: skipped},
		{Event: types.ProgressEventNewArtifact, Artifact: layer},
		{Event: types.ProgressEventRead, Artifact: layer, Offset: 1 << 20, OffsetUpdate: 1 << 20},
		{Event: types.ProgressEventDone, Artifact: layer, Offset: 4 << 20, OffsetUpdate: 3 << 20},
	}
	tests := []struct {
		name     string
		terminal bool
		want     []string
	}{
		{"lines", false, []string{
			"blob " + short(skipped.Digest) + ": skipped, the destination has " + short(skipped.Digest) + "\n",
			"layer 1/2 hello: 1.0 MiB / 4.0 MiB, ",
			"layer 1/2 hello: done, 4.0 MiB in ",
			"1 blobs uploaded (4.0 MiB in ",
		}},
		{"bars", true, []string{"\x1b[", "layer 1/2 hello", "total", "layer 1/2 hello: done, 4.0 MiB in "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := newReporter(&buf, tc.terminal, time.Second, names)
			for _, ev := range events {
				r.events <- ev
			}
			r.close()
			r.summary()
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if !tc.terminal && strings.Contains(out, "\x1b") {
				t.Errorf("plain output has escape sequences:\n%q", out)
			}
		})
	}
}
