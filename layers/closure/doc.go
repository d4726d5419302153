// Package closure reads the closure graph Nix writes for a derivation with
// structured attributes and exportReferencesGraph:
//
//	exportReferencesGraph.closure = [ drv … ];
//
// puts into .attrs.json, under "closure", a JSON array with one object per
// store path of the union of the closures of the listed paths:
//
//	{"path": "/nix/store/…-foo", "narHash": "sha256:1xk0…", "narSize": 168,
//	 "closureSize": 1982904, "references": ["/nix/store/…-bar"], "ca": "…"}
//
// Nix lists a path that refers to itself among its own references; Parse
// drops such self-references, so a Graph has no self-loops. Every store
// path is validated, every reference must name a path of the graph and no
// path may appear twice; errors name the path and the field at fault.
package closure
