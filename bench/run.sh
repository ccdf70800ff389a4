#!/usr/bin/env bash
# Builds and runs the benchmarks (KV v2, Transit, Kubernetes login with service and batch
# tokens, a three-node Raft cluster) against local
# appliances, and the offline audit verifier over a 10-million-line log; prints ratios to raw
# limits measured in the same run.
# Usage: bench/run.sh [--seconds=N] [--clients=N]
# Environment: AUDIT_BENCH_LINES (default 10000000; the log, about 14 GB, is written once to
# $TMPDIR/strongroom-audit-bench-N and reused), AUDIT_BENCH_GZIP=1 to also measure it compressed.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRONGROOM_TESTS=OFF >/dev/null
ninja -C build-bench -j2 strongroomd strongroom-worker kv_bench transit_bench cluster_bench \
  login_bench \
  snapshot_bench \
  audit_verify_bench
./build-bench/bench/kv_bench "$@"
./build-bench/bench/transit_bench "$@"
./build-bench/bench/login_bench "$@"
./build-bench/bench/cluster_bench "$@"
./build-bench/bench/snapshot_bench --store-mb="${SNAPSHOT_BENCH_MB:-1024}"
./build-bench/bench/audit_verify_bench --lines="${AUDIT_BENCH_LINES:-10000000}" \
  ${AUDIT_BENCH_GZIP:+--gzip}
