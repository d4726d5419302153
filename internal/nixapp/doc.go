// Package nixapp writes the flake apps of nix/apps.nix: inside a Nix build
// with structured attributes, it writes the attribute "script" to
// outputs.out/bin/<program>, executable. nix/ uses builtins only, so it has
// no shell to write files with: the static nixpush binary is the builder.
package nixapp
