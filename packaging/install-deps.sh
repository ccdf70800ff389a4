#!/usr/bin/env bash
# Installs every Debian 12 package strongroom needs to build, test and run (as root).
# Usage: packaging/install-deps.sh [--runtime-only | --build-only]
#   (no option)     build, test and run: everything below, and Node.js/npm for the e2e tests
#   --build-only    build and run, no test tools (the container image's build stage)
#   --runtime-only  run only
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# zlib1g-dev: strongroom-audit reads the audit files logrotate compressed (and RocksDB's zlib).
build_pkgs=(
  ca-certificates git cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libssl-dev librocksdb-dev libabsl-dev
  protobuf-compiler libprotobuf-dev libgfshare-dev libp11-kit-dev libseccomp-dev
  nlohmann-json3-dev libuv1-dev liblz4-dev zlib1g-dev
)
# libraft-dev >= 0.17.1 (the Raft engine; bookworm's own 0.15.0 has the Figure 8 bug) comes from
# bookworm-backports, Debian 12's official backports suite. It is linked statically, so running
# strongroom needs nothing from backports.
backports_pkgs=(libraft-dev)
# Tests: GoogleTest, the fuzz/sanitizer toolchain, the format check, the package test (rpm for
# CPack's RPM generator, file and dpkg-dev for its .deb dependency scan, systemd for
# systemd-analyze; debootstrap and systemd-container to boot a Debian 12 root under systemd for
# tests/packaging/systemd_test.sh; podman and runc to build and run the container image in
# tests/packaging/container_test.sh) and the checks of the deployment files
# (tests/deploy/check_manifests.py: PyYAML, yamllint; shellcheck); the fault suite
# (tests/faults/run.sh: iproute2 for network namespaces, veth and a bridge, nftables for
# partitions, libfaketime for clock jumps of one process).
test_pkgs=(
  libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
  rpm systemd file dpkg-dev debootstrap systemd-container podman runc
  python3 python3-yaml yamllint shellcheck
  iproute2 nftables libfaketime
)
# jq: deploy/kubernetes/init/strongroom-init.sh (and its test). zlib1g: strongroom-audit.
runtime_pkgs=(softhsm2 opensc procps curl openssl adduser util-linux jq zlib1g)

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

# The backports suite, added from the archive this machine's apt sources already name (deb822
# .sources or one-line sources.list), so no host name is written here.
enable_backports() {
  local list=/etc/apt/sources.list.d/strongroom-backports.sources uri=""
  if grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*; then
    return 0
  fi
  # deb822 (.sources: "URIs: http://…") first, then one-line sources.list ("deb [opts] URI suite …").
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' | grep -v security | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -n -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' |
      grep -v security | head -n1 || true)
  fi
  if [ -z "$uri" ]; then
    echo "install-deps: cannot find the Debian archive in the apt sources to add bookworm-backports" >&2
    exit 1
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$uri" /usr/share/keyrings/debian-archive-keyring.gpg >"$list"
  echo "added bookworm-backports ($uri) in $list"
}

backports_missing=()
if [ "$mode" != "--runtime-only" ]; then
  for p in "${backports_pkgs[@]}"; do
    v=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)
    case "$v" in
      "install ok installed "*) dpkg --compare-versions "${v##* }" ge 0.17.1 && continue ;;
    esac
    backports_missing+=("$p")
  done
fi

if [ ${#backports_missing[@]} -gt 0 ]; then
  enable_backports
fi

if [ ${#missing[@]} -gt 0 ] || [ ${#backports_missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]} ${backports_missing[*]}"
  log=$(mktemp)
  if ! {
    apt-get update -qq &&
      if [ ${#missing[@]} -gt 0 ]; then
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
      fi &&
      if [ ${#backports_missing[@]} -gt 0 ]; then
        apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports_missing[@]}"
      fi
  } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
