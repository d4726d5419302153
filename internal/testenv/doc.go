// Package testenv holds helpers shared by tests that drive real tools: Nix
// (nix.go), registries (registry.go: Debian's docker-registry 2.8 or
// distribution v3 as processes, go-containerregistry's registry in
// process), fault and delay proxies, skopeo. A missing tool skips a test,
// or fails it under NIXPUSH_REQUIRE_TOOLS=1 (see Tool).
//
// Which registry StartRegistry runs is chosen by NIXPUSH_TEST_REGISTRY
// (docker-registry, the default, or distribution), so that .ci/test runs
// the same registry tests against both without any test naming one.
package testenv
