#!/usr/bin/env bash
# Installs every Debian 12 package strongroom needs to build, test and run (as root).
# Usage: packaging/install-deps.sh [--runtime-only]
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

build_pkgs=(
  ca-certificates git cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libssl-dev librocksdb-dev libabsl-dev
  protobuf-compiler libprotobuf-dev libgfshare-dev libp11-kit-dev libseccomp-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev
  clang libclang-rt-14-dev clang-format
  rpm systemd
)
runtime_pkgs=(softhsm2 opensc procps curl openssl adduser util-linux)

pkgs=("${runtime_pkgs[@]}")
if [ "${1:-}" != "--runtime-only" ]; then
  pkgs+=("${build_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm drive the end-to-end tests with real Vault client libraries. A machine that
# already has a node/npm (for example from another vendor's package) keeps it.
if [ "${1:-}" != "--runtime-only" ] && ! command -v npm >/dev/null 2>&1; then
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
