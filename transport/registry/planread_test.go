package registry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nixpush/nixpush/internal/testenv"

	"github.com/nixpush/nixpush/internal/jsonfield"
)

// TestParsePlanErrorsNamePath: every plan error names the field at fault,
// with its indices.
func TestParsePlanErrorsNamePath(t *testing.T) {
	const img = `"/nix/store/00000000000000000000000000000000-image.json"`
	const dest = `"docker://registry.example.com/app:v1"`
	for _, c := range []struct{ name, in, want string }{
		{"destination of the wrong type", `{"images":[{"image":` + img + `,"destinations":[` + dest + `]},{"image":` + img + `,"destinations":[` + dest + `,7]}]}`,
			"images[1].destinations[1]: expected a string, got JSON number 7"},
		{"unknown nested field", `{"images":[{"image":` + img + `,"destination":[` + dest + `]}]}`,
			"images[0].destination: unknown field"},
		{"images not an array", `{"images":{"image":` + img + `}}`, "images: expected an array, got JSON object"},
		{"syntax error", `{"images":[{"image":` + img + `,}]}`, "images[0]: malformed JSON at line 1, column 78"},
		{"no image", `{"images":[{"destinations":[` + dest + `]}]}`, "images[0].image: missing"},
		{"no destinations", `{"images":[{"image":` + img + `}]}`, "images[0].destinations (/nix/store/00000000000000000000000000000000-image.json): none"},
		{"bad destination", `{"images":[{"image":` + img + `,"destinations":[` + dest + `,"app"]}]}`, "images[0].destinations[1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestReadPlanSpecialFiles: a plan that is a device, a FIFO or too big is
// refused at once, naming the file.
func TestReadPlanSpecialFiles(t *testing.T) {
	fifo, big := testenv.UntrustedFiles(t, MaxPlanSize+1)
	for _, c := range []struct {
		file string
		is   error
	}{{"/dev/zero", jsonfield.ErrNotRegular}, {fifo, jsonfield.ErrNotRegular}, {big, jsonfield.ErrTooLarge}} {
		done := make(chan error, 1)
		go func() { _, err := ReadPlan(c.file); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.file) {
				t.Errorf("ReadPlan(%s): %v, want %v naming the file", c.file, err, c.is)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ReadPlan(%s) still reading after 10s", c.file)
		}
	}
}
