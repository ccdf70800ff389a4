#!/usr/bin/env bash
# Installs what is needed, builds, and starts a dev appliance in the foreground:
# a throwaway SoftHSM2 token, initialised and unsealed, secret/ as KV v2, HTTP on 127.0.0.1:8200,
# the root token printed. Ctrl-C stops it and removes the token and data.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRONGROOM_TESTS=OFF >/dev/null
ninja -C build-dev -j2 strongroomd strongroom-worker strongroom  # the server, and the CLI (build-dev/cli/strongroom)
exec ./build-dev/appliance/strongroomd -dev "$@"
