#!/usr/bin/env bash
# Builds and runs the benchmarks (KV v2, Transit, Kubernetes login with service and batch
# tokens, a three-node Raft cluster, a large store) against local appliances, a Raft snapshot of
# a large store, and the offline audit verifier over a 10-million-line log; each prints ratios to
# raw limits measured in the same run. At the end, the targets table of issue 22: every row with
# this run's figure, its ratio, the target and whether it is met, from the benchmarks'
# machine-readable lines "RESULT <key> <value>" (bench/bench_util.h).
#
# Usage: bench/run.sh [--seconds=N] [--clients=N] [--bin=DIR]
#                     [--only=NAME,...] [--skip=NAME,...] [--quick]
#                     [--kv-args='...'] [--scale-args='...']
#                     [--build-dir=DIR] [--no-build] [--out=DIR] [--table=DIR]
#   NAME is one of: kv transit login cluster scale snapshot audit-verify
#   --quick          skips the long ones: scale, snapshot (1 GiB), audit-verify (10M lines)
#   --scale-args     extra flags for scale_bench, e.g. --scale-args='--scale=0.01' (default: the
#                    issue's full size, 1M secrets; see bench/scale_bench.cc)
#   --bin=DIR        strongroomd and strongroom-worker to measure (default: the ones built here)
#   --build-dir=DIR  where the benchmarks are built (default build-bench, Release)
#   --out=DIR        where each benchmark's output is kept (default DIR/results-<time>)
#   --table=DIR      only print the targets table from the outputs kept in DIR
# Environment: AUDIT_BENCH_LINES (default 10000000; the log, about 14 GB, is written once to
# $TMPDIR/strongroom-audit-bench-N and reused), AUDIT_BENCH_GZIP=1 to also measure it compressed,
# SNAPSHOT_BENCH_MB (default 1024).
set -euo pipefail
cd "$(dirname "$0")/.."

all="kv transit login cluster scale snapshot audit-verify"
only="" skip="" common=() kv_args="" scale_args="" build_dir=build-bench build=1 out="" table=""
for a in "$@"; do
  case "$a" in
    --seconds=* | --clients=* | --bin=*) common+=("$a") ;;
    --only=*) only="${a#--only=}" ;;
    --skip=*) skip="$skip,${a#--skip=}" ;;
    --quick) skip="$skip,scale,snapshot,audit-verify" ;;
    --kv-args=*) kv_args="${a#--kv-args=}" ;;
    --scale-args=*) scale_args="${a#--scale-args=}" ;;
    --build-dir=*) build_dir="${a#--build-dir=}" ;;
    --no-build) build=0 ;;
    --out=*) out="${a#--out=}" ;;
    --table=*) table="${a#--table=}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
for n in ${only//,/ } ${skip//,/ }; do
  case " $all " in *" $n "*) ;; *) echo "run.sh: unknown benchmark '$n' ($all)" >&2; exit 2 ;; esac
done

# Whether benchmark $1 runs.
wanted() {
  if [[ -n "$only" && ",$only," != *",$1,"* ]]; then return 1; fi
  [[ ",$skip," != *",$1,"* ]]
}

# The targets table from the RESULT lines in $1/*.log.
print_table() {
  local dir="$1"
  # label | key of this run's figure | key of the ratio | test (ge/le/lt/info) | target | the
  # issue's figure on the landed tree
  local rows='KV v2 read, 8 clients, hot key, vs bare Beast responder|kv.read_ops|kv.read_vs_bare|ge|0.5|12.2k/s = 0.15
KV v2 read, many keys, vs bare Beast responder|kv.read_many_ops|kv.read_many_vs_bare|ge|0.5|(new)
KV v2 durable write vs raw RocksDB sync put, N writers|kv.write_ops|kv.write_vs_rocksdb_sync|ge|1.0|4.3k/s = 0.33
KV v2 durable write, hot key, vs RocksDB sync put, N|kv.write_hot_ops|kv.write_hot_vs_rocksdb_sync|info||(new)
KV read with file audit on, vs audit off|kv.read_audit_ops|kv.audit_read_ratio|ge|0.85|0.41
KV write with file audit on, vs audit off|kv.write_audit_ops|kv.audit_write_ratio|ge|0.85|0.72
KV broker / workers peak RSS (MiB)|kv.broker_peak_rss_mib|kv.workers_peak_rss_mib|info||(new)
Transit encrypt 1 KiB vs raw in-process C_Encrypt|transit.encrypt_1k_ops|transit.encrypt_ratio|ge|0.5|9.3k/s = 0.175
Transit decrypt 1 KiB vs raw C_Decrypt|transit.decrypt_1k_ops|transit.decrypt_ratio|ge|0.5|13.6k/s = 0.33
raw libraft, 3 nodes, 1 KiB put (C API, pipelined)|cluster.raw_libraft_puts||info||(new)
3-node KV write on the leader vs raw libraft|cluster.write_ops|cluster.write_vs_raw_libraft|ge|0.5|1.8k/s = 0.41 of RaftStorage
3-node KV write on the leader, p99 (ms)|cluster.write_p99_ms|cluster.write_p99_ms|lt|10|13
KV read through a standby vs on the leader|cluster.standby_read_ops|cluster.standby_read_ratio|ge|0.8|0.22
Scale: secrets in the full store (the run'"'"'s size)|scale.secrets||info||1000000 at full size
Scale: read p99, full store vs empty|scale.loaded.read_p99_us|scale.read_p99_ratio|le|2|(new)
Scale: read p99 with a random loaded token, vs empty|scale.loaded.read_any_token_p99_us|scale.read_any_token_p99_ratio|le|2|(new)
Scale: write p99, full store vs empty|scale.loaded.write_p99_us|scale.write_p99_ratio|le|2|(new)
Scale: login p99, full store vs empty|scale.loaded.login_p99_us|scale.login_p99_ratio|le|2|(new)
Scale: read CPU per op (us), full store vs empty|scale.loaded.read_cpu_us_per_op|scale.read_cpu_ratio|info||(new)
Scale: write CPU per op (us), full store vs empty|scale.loaded.write_cpu_us_per_op|scale.write_cpu_ratio|info||(new)
Scale: login CPU per op (us), full store vs empty|scale.loaded.login_cpu_us_per_op|scale.login_cpu_ratio|info||(new)
Scale: start-up to ready (s), full store vs empty|scale.loaded.startup_s|scale.startup_ratio|info||(new)
Scale: broker RSS (MiB), full store|scale.loaded.broker_rss_mib||info||(new)
Scale: API snapshot of the full store (1: taken, 0: refused)|scale.snapshot_ok||info||(new)
Scale: Raft install of the full store on a new node (s)|scale.install_s||info||(new)'
  cat "$dir"/*.log 2>/dev/null | grep -a '^RESULT ' | ROWS="$rows" awk '
    function human(key, v) {
      if (v == "") return "-"
      if (key ~ /_ops$|_puts$/) return (v >= 1000 ? sprintf("%.1fk/s", v / 1000) : sprintf("%.0f/s", v))
      if (key ~ /_us$|_us_per_op$/) return sprintf("%.0f us", v)
      if (key ~ /_ms$/) return sprintf("%.1f ms", v)
      if (key ~ /_s$/) return sprintf("%.2f s", v)
      if (key ~ /_mib$/) return sprintf("%.1f MiB", v)
      if (key ~ /^scale\.(secrets|tokens|policies|entities|snapshot_ok)$/) return sprintf("%d", v)
      return sprintf("%.3g", v)
    }
    { value[$2] = $3 }
    END {
      n = split(ENVIRON["ROWS"], line, "\n")
      printf "%-58s %-10s %-10s %-8s %-12s %s\n", "measure", "now", "ratio", "target", "met?", "issue (landed tree)"
      for (i = 1; i <= n; i++) {
        split(line[i], f, "|")
        label = f[1]; abs_key = f[2]; ratio_key = f[3]; op = f[4]; target = f[5]; before = f[6]
        now = (abs_key in value) ? human(abs_key, value[abs_key]) : "-"
        have = (ratio_key != "" && ratio_key in value)
        ratio = have ? human(ratio_key, value[ratio_key]) : "-"
        if (ratio_key == abs_key) ratio = "-"
        r = value[ratio_key] + 0
        shown = op == "ge" ? ">= " target : op == "le" ? "<= " target : op == "lt" ? "< " target : "-"
        if (op == "info") met = "-"
        else if (!have) met = "not measured"
        else if ((op == "ge" && r >= target) || (op == "le" && r <= target) || (op == "lt" && r < target)) met = "yes"
        else met = "NO"
        printf "%-58s %-10s %-10s %-8s %-12s %s\n", label, now, ratio, shown, met, before
      }
    }'
}

if [[ -n "$table" ]]; then
  print_table "$table"
  exit 0
fi

targets=(strongroomd strongroom-worker)
wanted kv && targets+=(kv_bench)
wanted transit && targets+=(transit_bench)
wanted login && targets+=(login_bench)
wanted cluster && targets+=(cluster_bench)
wanted scale && targets+=(scale_bench)
wanted snapshot && targets+=(snapshot_bench)
wanted audit-verify && targets+=(audit_verify_bench)
if [[ "$build" == 1 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRONGROOM_TESTS=OFF >/dev/null
  ninja -C "$build_dir" -j2 "${targets[@]}"
fi
out="${out:-$build_dir/results-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
failed=()
# Runs benchmark $1 (a name) as the rest of the arguments, its output on the terminal and in
# $out/$1.log; a failure is noted and the others still run.
run() {
  local name="$1"
  shift
  echo "== $name: $*"
  if ! "$@" 2>&1 | tee "$out/$name.log"; then
    failed+=("$name")
  fi
}
b="$build_dir/bench"
# shellcheck disable=SC2086 # the extra arguments are split on purpose
{
  wanted kv && run kv "$b/kv_bench" "${common[@]}" $kv_args
  wanted transit && run transit "$b/transit_bench" "${common[@]}"
  wanted login && run login "$b/login_bench" "${common[@]}"
  wanted cluster && run cluster "$b/cluster_bench" "${common[@]}"
  wanted scale && run scale "$b/scale_bench" "${common[@]}" $scale_args
  wanted snapshot && run snapshot "$b/snapshot_bench" --store-mb="${SNAPSHOT_BENCH_MB:-1024}"
  wanted audit-verify && run audit-verify "$b/audit_verify_bench" \
    --lines="${AUDIT_BENCH_LINES:-10000000}" ${AUDIT_BENCH_GZIP:+--gzip}
} || true
echo
echo "== issue 22 targets (outputs in $out)"
print_table "$out"
if ((${#failed[@]} > 0)); then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
