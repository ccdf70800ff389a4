#!/bin/sh
# Lays out what the image takes from a build: stripped binaries and the two scripts, under OUT as
# they sit in the image's root. Used by the Dockerfile's build stage and by
# tests/packaging/container_test.sh --binaries=DIR (the prebuilt stage).
# Usage: packaging/container/stage-binaries.sh BUILD_DIR OUT_DIR (from the repository root)
set -eu
build=$1
out=$2
install -D -s -m 0755 "$build/appliance/strongroomd" "$out/usr/bin/strongroomd"
install -D -s -m 0755 "$build/cli/strongroom" "$out/usr/bin/strongroom"
install -D -s -m 0755 "$build/appliance/strongroom-worker" "$out/usr/libexec/strongroom/strongroom-worker"
install -D -s -m 0755 "$build/audit/strongroom-audit" "$out/usr/bin/strongroom-audit"
install -D -m 0755 packaging/container/entrypoint.sh "$out/usr/local/bin/strongroom-entrypoint"
install -D -m 0755 deploy/kubernetes/init/strongroom-init.sh "$out/usr/local/bin/strongroom-init"
