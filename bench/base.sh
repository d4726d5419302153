#!/usr/bin/env bash
# Base image benchmarks (issue #11), each against a baseline measured in
# the same run, on a base of 200 MiB of gzip layers served by a local
# registry:
#   - a cold push of an image on that base (nixpush copy nix:… docker://)
#     to an empty registry: client CPU and wall time against curl
#     uploading the base's layer files;
#   - pullImage of the base (nix-build of the fixed-output derivation, and
#     nixpush fetch-image alone) against skopeo copy docker://… oci:, with
#     what Nix alone costs for an output of that size beside them, and
#     pullImage against skopeo again across a 1 Gbit/s link.
#
#   bench/base.sh
#
# NIXPUSH_BENCH_BASE_BYTES overrides the base's size, NIXPUSH_BENCH_RUNS
# the rounds (default 3), NIXPUSH_BENCH_DOWNLINK_MBIT the link's rate
# (default 1000; 0 leaves it out); NIXPUSH_TEST_REGISTRY the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ] && [ "$1" != "--full" ]; then
	echo "usage: bench/base.sh" >&2
	exit 2
fi
. .ci/lib.sh
. bench/lib.sh
install_debs
install_go_tools
nixpush_nix_config
bench_run go test -tags "$NIXPUSH_TAGS" -run '^$' -bench '^BenchmarkBaseImage$' -benchtime 1x -timeout 60m ./bench/
