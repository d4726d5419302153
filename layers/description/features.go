package description

import (
	"fmt"
	"strings"
)

// Description versions. A description is written with the lowest version
// that holds every feature it uses (Image.NeededVersion), so that a build
// that uses no new feature stays readable by an older nixpush; each
// version adds optional features to the one before:
//   - 1: uncompressed tar layers of store paths.
//   - 2: compressed layers (a layer's "compression": zstd or gzip).
//   - 3: one extension for what images hold beyond their own store paths
//     and what is pushed beside them: blob layers (a base image's layer
//     as a file in the store), manifest annotations, an SBOM, and index
//     descriptions (multi-platform images, which exist only as version 3).
//
// A later feature comes as a next version the same way: a feature value
// below, reported by the features methods of the documents that can hold
// it.
const (
	// Version is the newest description version this build reads and
	// writes.
	Version = 3
	// MinVersion is the oldest it reads.
	MinVersion = 1
)

// A feature is something a document may use that older versions lack.
type feature struct {
	name    string // as errors name it: "compression", "blob layers"
	version int    // the first version that has it
}

var (
	featCompression = feature{"compression", 2}
	featAnnotations = feature{"annotations", 3}
	// featIndex is an index description: it exists only as version 3.
	featIndex = feature{"index", 3}
)

// features lists what l uses beyond version 1.
func (l *Layer) features() []feature {
	var fs []feature
	if l.Compression != nil {
		fs = append(fs, featCompression)
	}
	if l.Blob != nil {
		fs = append(fs, featBlob)
	}
	return fs
}

// features lists what img uses beyond version 1, its layers' included.
func (img *Image) features() []feature {
	fs := layersFeatures(img.Layers)
	if len(img.Annotations) > 0 {
		fs = append(fs, featAnnotations)
	}
	if img.SBOM != nil {
		fs = append(fs, featSBOM)
	}
	if img.BaseHistory != nil {
		fs = append(fs, featBlob)
	}
	return fs
}

func layersFeatures(ls []Layer) []feature {
	var fs []feature
	for i := range ls {
		fs = append(fs, ls[i].features()...)
	}
	return fs
}

// neededVersion is the lowest version holding fs, and the names of the
// features that need it ("compression, blob layers").
func neededVersion(fs []feature) (int, string) {
	v := MinVersion
	var names []string
	seen := map[string]bool{}
	for _, f := range fs {
		if f.version > v {
			v, names, seen = f.version, nil, map[string]bool{}
		}
		if f.version == v && !seen[f.name] {
			names = append(names, f.name)
			seen[f.name] = true
		}
	}
	return v, strings.Join(names, ", ")
}

// NeededVersion is the lowest description version holding img.
func (img *Image) NeededVersion() int {
	v, _ := neededVersion(img.features())
	return v
}

// NeededVersion is the lowest description version holding ls, for a
// layer file.
func NeededVersion(ls []Layer) int {
	v, _ := neededVersion(layersFeatures(ls))
	return v
}

// checkVersion checks a document's version against this build's and
// against the features it uses.
func checkVersion(v int, fs []feature) error {
	switch {
	case v == 0:
		return fmt.Errorf("version: missing")
	case v < MinVersion || v > Version:
		return fmt.Errorf("version: %w %d (this nixpush reads versions %d to %d)", ErrVersion, v, MinVersion, Version)
	}
	if need, names := neededVersion(fs); need > v {
		return fmt.Errorf("version: %d, but it uses features of version %d (%s)", v, need, names)
	}
	return nil
}
