package layers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
)

// FuzzConfinement feeds layer specs, as a description holds them, to
// Write, Open and Changed over the confinement fixture: whatever the spec,
// nothing outside the store root is opened and the canary never appears.
func FuzzConfinement(f *testing.F) {
	for _, p := range []string{cfGood, cfLink, cfLink + "/", cfLink + "/.", cfLink + "//", cfLink + "/shadow",
		cfGood + "/../" + cfLink[len(StoreDir)+1:], cfInner, cfRelative, StoreDir + "/0000000000000000000000000000000e-dot"} {
		for _, rewrite := range []string{"", "/", "/etc"} {
			b, _ := json.Marshal(Spec{Paths: []Path{{Path: p, Rewrite: rewrite, NarHash: "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"}}})
			f.Add(b)
		}
	}
	root, _ := confineFixture(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec Spec
		if json.Unmarshal(b, &spec) != nil {
			return
		}
		defer watchOpens(t, root)()
		ctx := context.Background()
		var out bytes.Buffer
		err := Write(ctx, &out, spec, WithRoot(root))
		if bytes.Contains(out.Bytes(), []byte(canary)) {
			t.Fatalf("canary in the layer of %s", b)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), []byte(canary)) {
			t.Fatalf("canary in the error for %s", b)
		}
		rc := Open(ctx, spec, "sha256:0000000000000000000000000000000000000000000000000000000000000000", 1<<20, WithRoot(root))
		streamed, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(streamed, []byte(canary)) {
			t.Fatalf("canary streamed for %s", b)
		}
		if spec.Validate() == nil {
			Changed(ctx, spec.Paths, WithRoot(root)) //nolint:errcheck // only what it opens matters
		}
	})
}
