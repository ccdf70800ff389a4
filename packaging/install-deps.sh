#!/usr/bin/env bash
# Installs every Debian 12 package strongroom needs to build, test and run (as root).
# Usage: packaging/install-deps.sh [--runtime-only | --build-only]
#   (no option)     build, test and run: everything below, and Node.js/npm for the e2e tests
#   --build-only    build and run, no test tools (the container image's build stage)
#   --runtime-only  run only
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

build_pkgs=(
  ca-certificates git cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libssl-dev librocksdb-dev libabsl-dev
  protobuf-compiler libprotobuf-dev libgfshare-dev libp11-kit-dev libseccomp-dev
  nlohmann-json3-dev
)
# Tests: GoogleTest, the fuzz/sanitizer toolchain, the format check, the package test (rpm for
# CPack's RPM generator, file and dpkg-dev for its .deb dependency scan, systemd for
# systemd-analyze; debootstrap and systemd-container to boot a Debian 12 root under systemd for
# tests/packaging/systemd_test.sh; podman and runc to build and run the container image in
# tests/packaging/container_test.sh) and the checks of the deployment files
# (tests/deploy/check_manifests.py: PyYAML, yamllint; shellcheck).
test_pkgs=(
  libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
  rpm systemd file dpkg-dev debootstrap systemd-container podman runc
  python3 python3-yaml yamllint shellcheck
)
# jq: deploy/kubernetes/init/strongroom-init.sh (and its test).
runtime_pkgs=(softhsm2 opensc procps curl openssl adduser util-linux jq)

mode=${1:-}
case "$mode" in
  "" | --runtime-only | --build-only) ;;
  *) echo "usage: $0 [--runtime-only | --build-only]" >&2; exit 2 ;;
esac
pkgs=("${runtime_pkgs[@]}")
if [ "$mode" != "--runtime-only" ]; then
  pkgs+=("${build_pkgs[@]}")
fi
if [ "$mode" = "" ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm drive the end-to-end tests with real Vault client libraries. A machine that
# already has a node/npm (for example from another vendor's package) keeps it.
if [ "$mode" = "" ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
