#!/usr/bin/env bash
# Builds and runs the benchmarks against a dev appliance; prints ratios to raw limits.
# Usage: bench/run.sh [--seconds=N] [--clients=N]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRONGROOM_TESTS=OFF >/dev/null
ninja -C build-bench -j2 strongroomd strongroom-worker kv_bench
./build-bench/bench/kv_bench "$@"
