#!/usr/bin/env bash
# Builds and runs the benchmarks (KV v2, Transit, a three-node Raft cluster) against local
# appliances; prints ratios to raw limits measured in the same run.
# Usage: bench/run.sh [--seconds=N] [--clients=N]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRONGROOM_TESTS=OFF >/dev/null
ninja -C build-bench -j2 strongroomd strongroom-worker kv_bench transit_bench cluster_bench
./build-bench/bench/kv_bench "$@"
./build-bench/bench/transit_bench "$@"
./build-bench/bench/cluster_bench "$@"
