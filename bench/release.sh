#!/usr/bin/env bash
# Release and big-layer benchmarks, with their baselines measured in the
# same run, driving the nixpush binary on store paths added to the real
# Nix store (and deleted afterwards):
#   - a 20-image release (four shared base layers, one layer of its own per
#     image, each image to its own repository) with one `nixpush push`,
#     against `nixpush copy` of each image in turn and against curl
#     uploading only the release's unique blobs, once each;
#   - the peak RSS of `nixpush copy` pushing a one-layer image, and its time
#     against curl uploading the same finished layer blob.
#
#   bench/release.sh          # 256 MiB release, 512 MiB layer: about a minute
#   bench/release.sh --full   # 1 GiB release, 4 GiB layer
#
# NIXPUSH_BENCH_RELEASE_BYTES and NIXPUSH_BENCH_LAYER_BYTES override the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--full" ]; then
	export NIXPUSH_BENCH_RELEASE_BYTES="${NIXPUSH_BENCH_RELEASE_BYTES:-1073741824}"
	export NIXPUSH_BENCH_LAYER_BYTES="${NIXPUSH_BENCH_LAYER_BYTES:-4294967296}"
fi
. .ci/lib.sh
. bench/lib.sh
install_debs
nixpush_nix_config
build_nixpush
NIXPUSH_BENCH_BIN="$(pwd)/.work/bin/nixpush"
export NIXPUSH_BENCH_BIN
# go test stops the registries and deletes the store paths it added, also
# when a benchmark fails; bench_run stops them if go test is killed.
bench_run go test -tags "$NIXPUSH_TAGS" -run '^$' -bench '^Benchmark(Release|BigLayer)$' -benchtime 1x -timeout 60m ./bench/
