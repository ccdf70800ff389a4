#!/usr/bin/env bash
# Installs every Debian 12 package strongroom needs to build, test and run (as root).
# Usage: packaging/install-deps.sh [--runtime-only | --build-only]
#   (no option)     build, test and run: everything below, and Node.js/npm for the e2e tests
#   --build-only    build and run, no test tools (the container image's build stage)
#   --runtime-only  run only
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# libbotan-2-dev: Argon2id for the userpass auth method's password hashes (OpenSSL 3.0 has none).
# zlib1g-dev: strongroom-audit reads the audit files logrotate compressed (and RocksDB's zlib).
# libgrpc++-dev, protobuf-compiler-grpc (grpc_cpp_plugin) and libyaml-cpp-dev: `strongroom
# csi-provider` (cli/csi: the Secrets Store CSI Driver's gRPC provider API and the objects YAML).
build_pkgs=(
  ca-certificates git cmake ninja-build g++ ccache pkg-config
  libboost1.81-dev libssl-dev librocksdb-dev libabsl-dev
  protobuf-compiler libprotobuf-dev libgfshare-dev libp11-kit-dev libseccomp-dev
  nlohmann-json3-dev libuv1-dev liblz4-dev zlib1g-dev libbotan-2-dev
  libgrpc++-dev protobuf-compiler-grpc libyaml-cpp-dev
  autoconf automake libtool make patch
)
# The Raft engine, libraft (cowsql raft) 0.22.1, is built from Debian's source with the patches in
# packaging/libraft (the build does that: cmake/Libraft.cmake); this script fetches the source
# tarball (fetch_libraft_source below) and the tools above (autotools, make, patch). It is linked
# statically, so running strongroom needs only libuv1 and liblz4-1 from bookworm.
here=$(cd "$(dirname "$0")" && pwd)
raft_tarball=raft_0.22.1.orig.tar.gz
raft_dest=/var/cache/strongroom-build/$raft_tarball
# Tests: GoogleTest, the fuzz/sanitizer toolchain, the format check, the package test (rpm for
# CPack's RPM generator, file and dpkg-dev for its .deb dependency scan, systemd for
# systemd-analyze; debootstrap and systemd-container to boot a Debian 12 root under systemd for
# tests/packaging/systemd_test.sh; podman and runc to build and run the container image in
# tests/packaging/container_test.sh) and the checks of the deployment files
# (tests/deploy/check_manifests.py: PyYAML, yamllint; shellcheck); the fault suite
# (tests/faults/run.sh: iproute2 for network namespaces, veth and a bridge, nftables for
# partitions, libfaketime for clock jumps of one process), and python3-prometheus-client, whose
# parser reads sys/metrics?format=prometheus in tests/e2e/metrics.test.js (a real Prometheus
# text-format parser).
test_pkgs=(
  libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format
  rpm systemd file dpkg-dev debootstrap systemd-container podman runc
  python3 python3-yaml yamllint shellcheck python3-prometheus-client
  iproute2 nftables libfaketime
)
# jq: deploy/kubernetes/init/strongroom-init.sh (and its test). zlib1g: strongroom-audit.
# libbotan-2-19: strongroomd (userpass password hashes). libgrpc++1.51 and libyaml-cpp0.7:
# /usr/bin/strongroom (its csi-provider command).
# pkcs11-provider comes from bookworm-backports (install_pkcs11_provider below).
runtime_pkgs=(softhsm2 opensc procps curl openssl adduser util-linux jq zlib1g libbotan-2-19 libgrpc++1.51 libyaml-cpp0.7)

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

# The Debian archive that this machine's apt sources name for bookworm (a deb822 .sources stanza
# whose Suites list bookworm, or a one-line "deb [opts] URI bookworm …"), as tests/packaging/lib.sh
# finds it, so no host name is written here.
debian_archive_uri() {
  local uri
  uri=$({
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u}'
    grep -hsE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+ +bookworm +' /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
  } | head -n1 || true)
  echo "${uri%/}"
}

# Debian's raft_0.22.1.orig.tar.gz, checked against the SHA-256 pinned in packaging/libraft. apt
# finds it in the signed source index of bookworm-backports (read with a private apt
# configuration in a temporary directory: the machine's apt sources are not changed) and
# apt-helper downloads it with the pinned hash; only the tarball is fetched (the package's .dsc
# and Debian diff are not needed). Should the index no longer list 0.22.1, the archive's pool
# keeps the file while any Debian suite still ships it; the hash check is the same.
fetch_libraft_source() {
  local archive tmp uri log raft_sha256
  raft_sha256=$(sed -n '1s/^\([0-9a-f]\{64\}\) .*/\1/p' "$here/libraft/$raft_tarball.sha256" 2>/dev/null || true)
  if [ ${#raft_sha256} != 64 ]; then
    echo "install-deps: no SHA-256 in $here/libraft/$raft_tarball.sha256" >&2
    exit 1
  fi
  if [ -f "$raft_dest" ] && echo "$raft_sha256  $raft_dest" | sha256sum -c --status; then
    return 0
  fi
  archive=$(debian_archive_uri)
  if [ -z "$archive" ]; then
    echo "install-deps: cannot find the Debian archive in the apt sources to fetch $raft_tarball" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  log=$tmp/log
  mkdir -p "$tmp/lists/partial" "$tmp/parts" "$tmp/dl"
  : >"$tmp/sources.list"
  printf 'Types: deb-src\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$archive" /usr/share/keyrings/debian-archive-keyring.gpg >"$tmp/parts/strongroom-src.sources"
  local apt_src=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts="$tmp/parts"
    -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  uri=""
  if apt-get "${apt_src[@]}" update -qq >"$log" 2>&1; then
    uri=$(apt-get "${apt_src[@]}" source --only-source --print-uris raft 2>>"$log" |
      awk -v f="$raft_tarball" '$2 == f { gsub("\047", "", $1); print $1 }' || true)
  fi
  if [ -z "$uri" ]; then
    uri=$archive/pool/main/r/raft/$raft_tarball
  fi
  chmod 0755 "$tmp" "$tmp/dl"
  chown _apt "$tmp/dl" 2>/dev/null || true
  if ! /usr/lib/apt/apt-helper download-file "$uri" "$tmp/dl/$raft_tarball" "SHA256:$raft_sha256" \
    >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: cannot fetch $raft_tarball with SHA-256 $raft_sha256 from $uri" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mkdir -p "$(dirname "$raft_dest")"
  install -m 0644 "$tmp/dl/$raft_tarball" "$raft_dest"
  rm -rf "$tmp"
  echo "fetched $raft_tarball (SHA-256 $raft_sha256) into $raft_dest"
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  log=$(mktemp)
  if ! {
    apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

# pkcs11-provider (OpenSSL 3's provider for PKCS#11 tokens; strongroomd uses the cluster port's
# key in the token through it) is in bookworm-backports only. When this machine's apt sources
# have no bookworm-backports, a deb822 stanza for it is added, on the same archive as bookworm
# (/etc/apt/sources.list.d/strongroom-bookworm-backports.sources); backports has apt's default
# priority 100, so nothing else is upgraded from it: only this package is asked for from there.
install_pkcs11_provider() {
  local archive log
  dpkg-query -W -f='${Status}' pkcs11-provider 2>/dev/null | grep -q "install ok installed" &&
    return 0
  if ! { cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^Types:/ {t=$0} /^Suites:/ && / bookworm-backports( |$)/ && t ~ / deb( |$)/ {f=1} END {exit !f}' ||
    grep -hsqE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+ +bookworm-backports +' /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list; }; then
    archive=$(debian_archive_uri)
    if [ -z "$archive" ]; then
      echo "install-deps: cannot find the Debian archive in the apt sources for bookworm-backports" >&2
      exit 1
    fi
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
      "$archive" /usr/share/keyrings/debian-archive-keyring.gpg \
      >/etc/apt/sources.list.d/strongroom-bookworm-backports.sources
  fi
  echo "installing: pkcs11-provider (bookworm-backports)"
  log=$(mktemp)
  if ! {
    apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends pkcs11-provider/bookworm-backports
  } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
install_pkcs11_provider

if [ "$mode" != "--runtime-only" ]; then
  fetch_libraft_source
fi
