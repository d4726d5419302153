#!/usr/bin/env bash
# Push benchmarks, with their baselines measured in the same run:
#   - cold push of a synthetic closure to an empty local registry, against
#     curl uploading the same finished blobs (the registry-bound limit),
#     skopeo copying the same layers from an OCI layout (gzip on the fly, as
#     by default, and with --preserve-digests) and crane pushing that layout;
#   - warm re-push of a 100-layer image whose blobs all exist, through a
#     proxy adding a round-trip delay, at several parallelisms and against
#     skopeo: wall time and number of requests.
#
#   bench/push.sh          # 256 MiB / 2,500 files: a few minutes on 2 cores
#   bench/push.sh --full   # 1 GiB / 10,000 files
#
# NIXPUSH_BENCH_BYTES, NIXPUSH_BENCH_FILES and NIXPUSH_BENCH_RTT_MS override
# the sizes and the simulated round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--full" ]; then
	export NIXPUSH_BENCH_BYTES="${NIXPUSH_BENCH_BYTES:-1073741824}" NIXPUSH_BENCH_FILES="${NIXPUSH_BENCH_FILES:-10000}"
fi
. .ci/lib.sh
. bench/lib.sh
install_debs
# crane v0.22.1, a baseline, into the repository's work directory (not the
# user's GOBIN); go install of a versioned package leaves go.mod alone.
if [ ! -x .work/bin/crane ]; then
	log "installing crane v0.22.1 into .work/bin"
	GOBIN="$(pwd)/.work/bin" go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
fi
NIXPUSH_BENCH_CRANE="$(pwd)/.work/bin/crane"
export NIXPUSH_BENCH_CRANE
bench_run go test -tags "$NIXPUSH_TAGS" -run '^$' -bench '^BenchmarkPush(Cold|Warm)$' -benchtime 1x -timeout 60m ./bench/
