package transport_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyTransportImportsContainersImage keeps containers/image out of
// every package but transport/ and its subpackages.
func TestOnlyTransportImportsContainersImage(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "github.com/nixpush/nixpush/...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.ImportPath == "github.com/nixpush/nixpush/transport" || strings.HasPrefix(p.ImportPath, "github.com/nixpush/nixpush/transport/") {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "go.podman.io/") || strings.HasPrefix(imp, "github.com/containers/image") {
				t.Errorf("%s imports %s; only transport/ may import containers/image", p.ImportPath, imp)
			}
		}
	}
}
