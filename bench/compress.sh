#!/usr/bin/env bash
# Benchmarks of compressed layers (issue #14), each against a baseline
# measured in the same run:
#   - describing the synthetic closure with zstd and with gzip (default
#     levels) against describing it uncompressed, and the compressed blobs'
#     bytes against the tars';
#   - a cold push of the zstd image of that closure against curl uploading
#     the same compressed blobs;
#   - a real tree, the Go toolchain's sources (--full: the whole
#     toolchain), added to the Nix store as up to 4 store paths (and
#     deleted afterwards): its compressed bytes and describe times; a cold
#     push of its zstd image with the nixpush binary against curl, and
#     the push's peak RSS against the uncompressed image's; `podman pull`
#     of its zstd image against its uncompressed image through a proxy
#     limited to 100 Mbit/s, and straight from the registry.
#
#   bench/compress.sh          # 256 MiB / 2,500 files, GOROOT/src: a few minutes on 2 cores
#   bench/compress.sh --full   # 1 GiB / 10,000 files, all of GOROOT
#
# NIXPUSH_BENCH_BYTES and NIXPUSH_BENCH_FILES override the synthetic
# closure's size, NIXPUSH_BENCH_REAL_TREE the real tree (a directory),
# NIXPUSH_BENCH_RUNS the rounds (default 5; 3 for the pulls);
# NIXPUSH_TEST_REGISTRY the registry (docker-registry by default).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--full" ]; then
	export NIXPUSH_BENCH_BYTES="${NIXPUSH_BENCH_BYTES:-1073741824}" NIXPUSH_BENCH_FILES="${NIXPUSH_BENCH_FILES:-10000}"
	NIXPUSH_BENCH_REAL_TREE="${NIXPUSH_BENCH_REAL_TREE:-$(go env GOROOT)}"
	export NIXPUSH_BENCH_REAL_TREE
elif [ $# -gt 0 ]; then
	echo "usage: bench/compress.sh [--full]" >&2
	exit 2
else
	export NIXPUSH_BENCH_BYTES="${NIXPUSH_BENCH_BYTES:-268435456}" NIXPUSH_BENCH_FILES="${NIXPUSH_BENCH_FILES:-2500}"
fi
. .ci/lib.sh
. bench/lib.sh
install_debs
install_go_tools
nixpush_nix_config
build_nixpush
NIXPUSH_BENCH_BIN="$(pwd)/.work/bin/nixpush"
export NIXPUSH_BENCH_BIN
# go test stops the registries, removes podman's storages and deletes the
# store paths it added, also when a benchmark fails; bench_run stops them
# if go test is killed.
bench_run go test -tags "$NIXPUSH_TAGS" -run '^$' -bench '^Benchmark(DescribeCompressed|PushColdZstd|RealTree)$' -benchtime 1x -timeout 60m ./bench/
