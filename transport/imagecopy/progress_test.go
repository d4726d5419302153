package imagecopy

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/nixpush/nixpush/transport/registry"
)

// TestEvents feeds containers/image progress events to the registry's
// progress view, in both of its modes: an upload gets a line, and the
// report counts what happened to each blob.
func TestEvents(t *testing.T) {
	layer := types.BlobInfo{Digest: digest.FromString("layer"), Size: 4 << 20}
	config := types.BlobInfo{Digest: digest.FromString("config"), Size: 100}
	skipped := types.BlobInfo{Digest: digest.FromString("skipped"), Size: 100}
	failed := types.BlobInfo{Digest: digest.FromString("failed"), Size: 100}
	names := map[digest.Digest]string{layer.Digest: "layer 1/2 hello"}
	evs := []types.ProgressProperties{
		{Event: types.ProgressEventSkipped, Artifact: skipped},
		{Event: types.ProgressEventNewArtifact, Artifact: layer},
		{Event: types.ProgressEventRead, Artifact: layer, Offset: 1 << 20, OffsetUpdate: 1 << 20},
		{Event: types.ProgressEventDone, Artifact: layer, Offset: 4 << 20, OffsetUpdate: 3 << 20},
		// The destination's own check found the config: done, nothing read.
		{Event: types.ProgressEventNewArtifact, Artifact: config},
		{Event: types.ProgressEventDone, Artifact: config},
		{Event: types.ProgressEventNewArtifact, Artifact: failed},
	}
	for _, terminal := range []bool{false, true} {
		var buf bytes.Buffer
		cfg, err := registry.NewConfig(registry.WithProgress(&buf, terminal, 10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.NewProgress(1)
		e := newEvents(p, names)
		for _, ev := range evs {
			e.ch <- ev
		}
		e.close()
		p.Close()
		tot := p.Report().Totals
		if tot.Uploaded.Blobs != 1 || tot.Uploaded.Bytes != layer.Size || tot.Skipped.Blobs != 2 {
			t.Errorf("terminal=%v: totals %+v, want 1 upload of %d bytes and 2 skipped", terminal, tot, layer.Size)
		}
		out := buf.String()
		if !strings.Contains(out, "uploaded layer 1/2 hello: 4.0 MiB in ") {
			t.Errorf("terminal=%v: output lacks the upload:\n%q", terminal, out)
		}
		if strings.Contains(out, "blob "+short(failed.Digest)) && !terminal {
			t.Errorf("an unfinished blob was reported done:\n%q", out)
		}
		if !terminal && strings.Contains(out, "\x1b") {
			t.Errorf("plain output has escape sequences:\n%q", out)
		}
	}
}
