#!/usr/bin/env bash
# The fault suite: real strongroomd nodes in network namespaces, a workload of KV v2 writes,
# CAS writes and reads, faults (kill -9, SIGSTOP, nftables partitions, full restarts, a full
# disk, clock jumps, membership changes) and a linearizability check of every round's history.
#   tests/faults/run.sh --rounds=N [--nodes=3|5] [--faults=a,b] [--seed=S] [--build=DIR]
#   tests/faults/run.sh --ci          (the short CI schedule: 3 rounds of kill, pause, partition)
#   tests/faults/run.sh --list        (the faults)
# Needs root, iproute2, nftables, util-linux (nsenter), softhsm2, openssl, libfaketime, and a
# build with strongroomd, strongroom-worker and strongroom-fault-check. See README.md here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/harness/run.py" "$@"
