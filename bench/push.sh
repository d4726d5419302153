#!/usr/bin/env bash
# Push benchmarks, with their baselines measured in the same run:
#   - cold push of a synthetic closure to an empty local registry, against
#     curl uploading the same finished blobs (the registry-bound limit),
#     skopeo copying the same layers from an OCI layout (gzip on the fly, as
#     by default, and with --preserve-digests) and crane pushing that layout;
#   - warm re-push of a 100-layer image whose blobs all exist, through a
#     proxy adding a round-trip delay, at several parallelisms and against
#     skopeo: wall time and number of requests.
# Both run against Debian's docker-registry 2.8, then distribution v3.
#
#   bench/push.sh          # 256 MiB / 2,500 files: a few minutes on 2 cores
#   bench/push.sh --full   # 1 GiB / 10,000 files
#
# NIXPUSH_BENCH_BYTES, NIXPUSH_BENCH_FILES and NIXPUSH_BENCH_RTT_MS override
# the sizes and the simulated round trip; NIXPUSH_TEST_REGISTRY=distribution
# (or docker-registry) runs against that registry only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--full" ]; then
	export NIXPUSH_BENCH_BYTES="${NIXPUSH_BENCH_BYTES:-1073741824}" NIXPUSH_BENCH_FILES="${NIXPUSH_BENCH_FILES:-10000}"
fi
. .ci/lib.sh
. bench/lib.sh
install_debs
install_go_tools
# Each benchmark once per registry implementation (NIXPUSH_TEST_REGISTRY,
# which testenv.StartRegistry reads), or only the one it names when set:
# figures against distribution v3 end in -distribution.
for registry in ${NIXPUSH_TEST_REGISTRY:-docker-registry distribution}; do
	log "push benchmarks against $registry"
	NIXPUSH_TEST_REGISTRY=$registry bench_run go test -tags "$NIXPUSH_TAGS" -run '^$' -bench '^BenchmarkPush(Cold|Warm)$' -benchtime 1x -timeout 60m ./bench/
done
