#!/usr/bin/env bash
# Installs what is needed, builds everything and runs every test: unit and integration tests
# (real SoftHSM2 tokens, RocksDB, broker and worker processes), then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, then each fuzz target for a bounded time.
# Environment: STRONGROOM_SKIP_ASAN=1 / STRONGROOM_SKIP_FUZZ=1 skip those stages (local use only).
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
jobs=${STRONGROOM_JOBS:-2}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/strongroom-ccache}
# Cache hits across checkouts in different folders (CI clones afresh elsewhere).
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
# Each stage's header says how long the run has taken so far (the CI budget is 35 minutes).
stage() { echo "==> $* [$((SECONDS / 60))m$((SECONDS % 60))s]"; }

stage "format check (clang-format, .clang-format)"
unformatted=$(git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror 2>&1 | grep -c 'error:' || true)
if [ "$unformatted" != 0 ]; then
  git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror 2>&1 | head -20
  echo "format: $unformatted places differ from .clang-format"; exit 1
fi
stage "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRONGROOM_TESTS=ON >/dev/null
ninja -C build -j"$jobs"
stage "tests"
ctest --test-dir build --output-on-failure -j"$jobs"
# The node test files run two at a time: most of their time is spent waiting on appliances and
# timers (one at a time they kept a core about two-thirds busy).
node_test=(node --test --test-concurrency=2)
stage "end-to-end tests (node-vault)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/e2e && STRONGROOM_BIN="$PWD/../../build/appliance" "${node_test[@]}")
stage "TypeScript client (clients/typescript: npm ci, tsc, node --test against dev appliances, npm pack)"
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
if ! (cd clients/typescript && STRONGROOM_BIN="$PWD/../../build/appliance" "${node_test[@]}" test/) >build/ts-client-test.log 2>&1; then
  cat build/ts-client-test.log
  echo "ts-client: FAILED"; exit 1
fi
echo "ts-client: $(awk '/^# pass /{p=$3} /^# fail /{f=$3} END{print p+0 " passed, " f+0 " failed"}' build/ts-client-test.log)"
stage "fault suite (3 nodes in network namespaces; kill -9, SIGSTOP, partition; histories checked for linearizability)"
rm -rf build/faults-ci
if ! tests/faults/run.sh --ci --build=build --out=build/faults-ci >build/faults-ci.log 2>&1; then
  cat build/faults-ci.log
  echo "fault suite: FAILED (anomalies, or a cluster that did not serve again after a heal; build/faults-ci holds the histories and node logs)"
  exit 1
fi
grep -E '^(round|faults:)' build/faults-ci.log
stage "packages (.deb and .rpm: build, inspect, install, run, remove, purge)"
tests/packaging/package_test.sh build
stage "the unit under a real systemd (Debian 12 root booted with systemd-nspawn)"
tests/packaging/systemd_test.sh build
stage "the container image (podman build of packaging/container/Dockerfile, run as the StatefulSet runs it)"
tests/packaging/container_test.sh --binaries=build
stage "deployment files (Kubernetes manifests, yamllint, shellcheck)"
tests/deploy/check_manifests.py >build/check_manifests.log || { cat build/check_manifests.log; exit 1; }
tail -1 build/check_manifests.log
shellcheck -x packaging/container/entrypoint.sh deploy/kubernetes/init/strongroom-init.sh deploy/kubernetes/injector/make-tls.sh packaging/install-deps.sh \
  packaging/libraft/build.sh tests/packaging/systemd_test.sh tests/packaging/container_test.sh \
  tests/faults/run.sh packaging/cluster-certs.sh packaging/container/stage-binaries.sh

if [ "${STRONGROOM_SKIP_ASAN:-0}" != 1 ]; then
  stage "build (ASan + UBSan)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTRONGROOM_SANITIZE=ON -DSTRONGROOM_TESTS=ON >/dev/null
  ninja -C build-asan -j"$jobs"
  stage "tests (ASan + UBSan)"
  # The adversarial deep-chain test builds its chain one request at a time; under the sanitizers
  # 5,000 generations keep the stage short (the Release run above uses the full 20,000).
  STRONGROOM_DEEP_CHAIN=${STRONGROOM_DEEP_CHAIN_ASAN:-5000} \
  LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
  stage "end-to-end tests (ASan + UBSan)"
  (cd tests/e2e && STRONGROOM_BIN="$PWD/../../build-asan/appliance" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    LSAN_OPTIONS=suppressions="$PWD/../lsan.supp" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "${node_test[@]}")
fi

if [ "${STRONGROOM_SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzz targets (bounded)"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DSTRONGROOM_FUZZ=ON -DSTRONGROOM_TESTS=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fuzzers=$(find tests/fuzz -maxdepth 1 -name '*_fuzz.cc' -printf '%f\n' | sed 's/\.cc$//' | sort)
  ninja -C build-fuzz -j"$jobs" $fuzzers
  seconds=${STRONGROOM_FUZZ_SECONDS:-30}
  # $jobs targets at a time (one core each): every target still fuzzes for $seconds.
  for f in $fuzzers; do
    (
      corpus=tests/fuzz/corpus/${f%_fuzz}
      scratch=$(mktemp -d)
      if ./build-fuzz/tests/fuzz/"$f" -max_total_time="$seconds" -print_final_stats=1 "$scratch" "$corpus" \
           > "build-fuzz/$f.log" 2>&1; then
        echo ok > "build-fuzz/$f.result"
      else
        echo failed > "build-fuzz/$f.result"
      fi
      rm -rf "$scratch"
    ) &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  done
  wait
  passed=0
  failed=0
  for f in $fuzzers; do
    if [ "$(cat "build-fuzz/$f.result" 2>/dev/null)" = ok ]; then
      echo "fuzz $f: ok ($(grep -m1 'stat::number_of_executed_units' "build-fuzz/$f.log" | awk '{print $2}') execs in ${seconds}s)"
      passed=$((passed + 1))
    else
      echo "fuzz $f: FAILED"; tail -40 "build-fuzz/$f.log"
      failed=$((failed + 1))
    fi
  done
  echo "fuzz: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
fi
echo "==> all stages passed [$((SECONDS / 60))m$((SECONDS % 60))s]"
