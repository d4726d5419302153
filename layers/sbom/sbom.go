package sbom

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/nixpush/nixpush/layers"
	"github.com/nixpush/nixpush/layers/description"
)

// Element identifiers and external reference names of the document.
const (
	imageID      = "Image"
	pathIDPrefix = "StorePath-"
	// StorePathRefType is the external reference type that holds a
	// package's store path.
	StorePathRefType = "nix-store-path"
	creator          = "nixpush"
	namespaceBase    = "https://spdx.org/spdxdocs/nixpush/"
)

// References gives the store paths p refers to, and whether p is known:
// the references graph of the build. A store path it does not know gets
// no DEPENDS_ON relationship.
type References func(p string) ([]string, bool)

// Input is what an SBOM is made of.
type Input struct {
	// Image is the image description; its layers' store paths are the
	// packages.
	Image *description.Image
	// Manifest is the digest of the image's manifest (Image.Encode).
	Manifest digest.Digest
	// References is the references graph; nil gives no DEPENDS_ON.
	References References
}

// Document makes the SPDX document of in.
func Document(in Input) (*spdx.Document, error) {
	img := in.Image
	if err := in.Manifest.Validate(); err != nil {
		return nil, fmt.Errorf("manifest digest: %w", err)
	}
	if in.Manifest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("manifest digest %s: not sha256", in.Manifest)
	}
	paths, err := storePaths(img)
	if err != nil {
		return nil, err
	}
	name := img.Name
	if name == "" {
		name = "image"
	}
	hexDigest := in.Manifest.Encoded()
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    common.ElementID("DOCUMENT"),
		DocumentName:      name + "@" + in.Manifest.String(),
		DocumentNamespace: Namespace(name, in.Manifest),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: creator}},
			Created:  img.Created.UTC().Format(time.RFC3339),
		},
	}
	imagePkg := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   common.ElementID(imageID),
		PackageVersion:          in.Manifest.String(),
		PackageDownloadLocation: "NOASSERTION",
		PackageChecksums:        []common.Checksum{{Algorithm: common.SHA256, Value: hexDigest}},
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  purl(img, in.Manifest),
		}},
		PrimaryPackagePurpose: "CONTAINER",
	}
	doc.Packages = append(doc.Packages, imagePkg)
	doc.Relationships = append(doc.Relationships, rel("DOCUMENT", "DESCRIBES", imageID))
	ids := make(map[string]string, len(paths))
	for _, p := range paths {
		ids[p.Path] = pathID(p.Path)
	}
	for _, p := range paths {
		pkg, err := storePackage(p)
		if err != nil {
			return nil, err
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, rel(imageID, "CONTAINS", ids[p.Path]))
	}
	if in.References != nil {
		for _, p := range paths {
			refs, _ := in.References(p.Path)
			refs = slices.Clone(refs)
			slices.Sort(refs)
			for _, r := range slices.Compact(refs) {
				if id, ok := ids[r]; ok && r != p.Path {
					doc.Relationships = append(doc.Relationships, rel(ids[p.Path], "DEPENDS_ON", id))
				}
			}
		}
	}
	return doc, nil
}

// Encode writes doc as nixpush writes SBOMs: indented JSON with a trailing
// newline, no HTML escaping.
func Encode(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return buf.Bytes(), nil
}

// SPDX makes and encodes the SPDX document of in.
func SPDX(in Input) ([]byte, error) {
	doc, err := Document(in)
	if err != nil {
		return nil, err
	}
	return Encode(doc)
}

// Namespace is the document namespace of the SBOM of the image name with
// manifest digest m: unique per image name and build.
func Namespace(name string, m digest.Digest) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return namespaceBase + strings.Join(segs, "/") + "/" + string(m.Algorithm()) + "-" + m.Encoded()
}

// ParseDrvName splits a store path name into a package name and version as
// Nix's builtins.parseDrvName does: the version starts after the first "-"
// that is followed by a character that is not a letter.
func ParseDrvName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !isLetter(s[i+1]) {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// storePaths returns the store paths of img's layers, each once, sorted.
// A store path listed twice (with and without a rewrite, or in two
// layers) must not have two NAR hashes.
func storePaths(img *description.Image) ([]layers.Path, error) {
	byPath := map[string]layers.Path{}
	where := map[string]string{}
	for i, l := range img.Layers {
		for j, p := range l.Paths {
			field := fmt.Sprintf("layers[%d].paths[%d]", i, j)
			if err := layers.ValidateStorePath(p.Path); err != nil {
				return nil, fmt.Errorf("%s.path: %w", field, err)
			}
			prev, seen := byPath[p.Path]
			switch {
			case !seen:
				byPath[p.Path], where[p.Path] = p, field
			case prev.NarHash == "":
				prev.NarHash = p.NarHash
				byPath[p.Path] = prev
			case p.NarHash != "" && !sameHash(prev.NarHash, p.NarHash):
				return nil, fmt.Errorf("%s.narHash: %s has NAR hash %s here and %s in %s", field, p.Path, p.NarHash, prev.NarHash, where[p.Path])
			}
		}
	}
	out := make([]layers.Path, 0, len(byPath))
	for _, p := range byPath {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b layers.Path) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func sameHash(a, b string) bool {
	ha, errA := narHashHex(a)
	hb, errB := narHashHex(b)
	return errA == nil && errB == nil && ha == hb
}

// narHashHex gives a NAR hash in any of Nix's spellings as lower-case hex.
func narHashHex(s string) (string, error) {
	d, err := layers.ParseNarHash(s)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(d), nil
}

// pathID is the SPDX element id of a store path: its hash part, unique in
// a store.
func pathID(p string) string {
	base := strings.TrimPrefix(p, layers.StoreDir+"/")
	return pathIDPrefix + base[:32]
}

func storePackage(p layers.Path) (*spdx.Package, error) {
	base := strings.TrimPrefix(p.Path, layers.StoreDir+"/")
	name, version := ParseDrvName(base[33:])
	pkg := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   common.ElementID(pathID(p.Path)),
		PackageVersion:          version,
		PackageDownloadLocation: "NOASSERTION",
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryOther,
			RefType:  StorePathRefType,
			Locator:  p.Path,
		}},
	}
	if p.NarHash != "" {
		h, err := narHashHex(p.NarHash)
		if err != nil {
			return nil, fmt.Errorf("store path %s: narHash: %w", p.Path, err)
		}
		pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	return pkg, nil
}

func rel(a, typ, b string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.MakeDocElementID("", a),
		RefB:         common.MakeDocElementID("", b),
		Relationship: typ,
	}
}

// purl is the image's package URL (the purl spec's "oci" type): the last
// segment of its name, the manifest digest as version, its repository and
// platform as qualifiers, in the spec's sorted key order.
func purl(img *description.Image, m digest.Digest) string {
	name := img.Name
	if name == "" {
		name = "image"
	}
	last := strings.ToLower(name[strings.LastIndex(name, "/")+1:])
	q := url.Values{}
	q.Set("arch", img.Architecture)
	q.Set("os", img.OS)
	if strings.Contains(name, "/") {
		q.Set("repository_url", name)
	}
	if img.Variant != "" {
		q.Set("variant", img.Variant)
	}
	return "pkg:oci/" + url.PathEscape(last) + "@" + strings.ReplaceAll(m.String(), ":", "%3A") + "?" + q.Encode()
}
