#!/usr/bin/env bash
# Runs the installed unit under a real systemd: a fresh Debian 12 root (debootstrap, from the
# archive this machine's apt sources name) is booted with systemd-nspawn, the .deb is installed in
# it with apt-get while systemd is PID 1, and the steps of docs/operations.md ("Installing from a
# package") are followed as an operator would: PIN file, token, `systemctl enable --now`. Then:
# Type=notify readiness and STATUS=, the credential, the process's user, capabilities and seccomp
# state, sys/init, restart (auto-unseal, data kept), `systemctl reload` and logrotate (audit files
# reopen, the chain verifies), `systemd-analyze security` under the real manager, a clean stop, and
# `apt-get purge`. Usage: tests/packaging/systemd_test.sh BUILD_DIR (as root; run after
# package_test.sh, which leaves the .deb in BUILD_DIR).
set -euo pipefail
# Output is matched from variables, not through "cmd | grep -q": with pipefail, grep -q leaving
# early can fail the pipeline (the writer gets SIGPIPE).
# shellcheck source=tests/packaging/lib.sh
. "$(dirname "$0")/lib.sh"

build=$(cd "${1:?usage: systemd_test.sh BUILD_DIR}" && pwd)
checks=0
fail() {
  echo "systemd test: FAIL: $*" >&2
  if [ -n "${leader:-}" ]; then in_root journalctl -u strongroom --no-pager -n 40 >&2 || true; fi
  exit 1
}
ok() { checks=$((checks + 1)); }

[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, systemd-nspawn)"
deb=$(find "$build" -maxdepth 1 -name "strongroom_*_amd64.deb" | head -1)
[ -n "$deb" ] || fail "no .deb in $build (run tests/packaging/package_test.sh first)"

mirror=$(debian_mirror)
[ -n "$mirror" ] || fail "no bookworm archive in the apt sources"

work=$(mktemp -d /var/tmp/strongroom-systemd-XXXXXX)
root=$work/root
nspawn_pid=
leader=
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Runs a command inside the booted container: all its namespaces, and its root and working
# directory (-r -w: entering the mount namespace alone lands on the host's root when the test
# itself runs in a chroot).
in_root() { nsenter -t "$leader" -a -r -w "$@"; }

echo "==> systemd: debootstrap a Debian 12 root with systemd ($mirror)"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
echo strongroom-systemd-test >"$root/etc/hostname"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# /tmp inside is a fresh tmpfs once systemd runs; /opt is not.
cp "$deb" "$root/opt/strongroom.deb"

echo "==> systemd: boot it (systemd-nspawn, systemd as PID 1)"
# In a mount namespace of its own without /run/netns: `ip netns add` (the fault suite) makes
# that a shared mount, and under it the container's systemd never comes up.
unshare --mount --propagation private sh -c 'umount -l /run/netns 2>/dev/null || true
  exec systemd-nspawn --register=no --keep-unit --quiet --console=passive -D "$1" -b' sh "$root" \
  >"$work/boot.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 120); do
  leader=$(pgrep -P "$nspawn_pid" | head -1 || true)
  if [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ]; then break; fi
  leader=
  sleep 0.5
done
[ -n "$leader" ] || { cat "$work/boot.log"; fail "systemd did not start in the container"; }
# systemctl answers "offline" until PID 1 has made /run/systemd/system.
for _ in $(seq 1 120); do in_root test -d /run/systemd/system 2>/dev/null && break; sleep 0.5; done
state=$(in_root systemctl is-system-running --wait 2>/dev/null || true)
case "$state" in running | degraded) ok ;; *) fail "system state: $state" ;; esac
[ "$(in_root cat /proc/1/comm)" = systemd ] || fail "PID 1 in the container is not systemd"
ok

echo "==> systemd: apt-get install ./strongroom.deb (postinst under a running systemd)"
in_root env DEBIAN_FRONTEND=noninteractive sh -c \
  'apt-get update -qq && apt-get install -y -qq /opt/strongroom.deb softhsm2 opensc curl logrotate procps' \
  >"$work/install.log" 2>&1 || { tail -20 "$work/install.log"; fail "apt-get install"; }
in_root systemctl cat strongroom.service >/dev/null || fail "the unit is not known to systemd"
ok
in_root systemd-analyze verify /usr/lib/systemd/system/strongroom.service ||
  fail "systemd-analyze verify"
ok

echo "==> systemd: the operator's first start (docs/operations.md)"
in_root sh -c 'umask 077 && echo 4711 >/etc/strongroom/hsm-pin'
# The container shares the machine's network: a free port instead of 8200, which a dev appliance
# may hold.
port=$(free_port)
in_root sed -i "s|127.0.0.1:8200|127.0.0.1:$port|" /etc/strongroom/strongroom.hcl
in_root setpriv --reuid=strongroom --regid=strongroom --init-groups \
  env SOFTHSM2_CONF=/etc/strongroom/softhsm2.conf softhsm2-util --init-token --free \
  --label strongroom --pin 4711 --so-pin 271828 >/dev/null || fail "token initialisation"
# Type=notify: `systemctl start` returns once the daemon has sent READY=1.
in_root systemctl enable --now strongroom.service >/dev/null 2>&1 || fail "systemctl enable --now"
[ "$(in_root systemctl is-active strongroom)" = active ] || fail "not active after start"
ok
status=$(in_root systemctl show -p StatusText --value strongroom)
case "$status" in *"not initialised"*) ok ;; *) fail "STATUS= after the first start: $status" ;; esac

# The daemon's line reaches the journal shortly after systemctl returns: waits up to 10 s.
in_journal() { # text
  for _ in $(seq 1 20); do
    grep -qF "$1" <<<"$(in_root journalctl -u strongroom --no-pager)" && return 0
    sleep 0.5
  done
  return 1
}

health() { in_root curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/sys/health"; }
[ "$(health)" = 501 ] || fail "sys/health before init: $(health)"
init=$(in_root curl -sf -X PUT "http://127.0.0.1:$port/v1/sys/init" -d '{}') || fail "sys/init"
token=$(printf '%s' "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
[ "$(health)" = 200 ] || fail "sys/health after init: $(health)"
ok

echo "==> systemd: what the unit gives the daemon"
main=$(in_root systemctl show -p MainPID --value strongroom)
cred=$(in_root stat -c '%U %a' /run/credentials/strongroom.service/hsm-pin)
[ "$cred" = "strongroom 400" ] || fail "credential: $cred"
ok
proc_status() { in_root sh -c "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/$1/status"; }
strongroom_uid=$(in_root id -u strongroom)
worker_uid=$(in_root id -u strongroom-worker) || fail "no strongroom-worker user"
[ "$worker_uid" != "$strongroom_uid" ] || fail "the workers' user is the service user"
# The broker and the spawner run as strongroom, the workers as strongroom-worker (issue 15,
# item 12: no signal or ptrace of the broker's uid from a worker).
pids=$(in_root pgrep -u strongroom | tr '\n' ' ')
[ "$(wc -w <<<"$pids")" -eq 2 ] || fail "expected broker and spawner as strongroom, found: $pids"
grep -qw "$main" <<<"$pids" || fail "main pid $main does not run as strongroom"
worker_pids=$(in_root pgrep -u strongroom-worker | tr '\n' ' ')
[ "$(wc -w <<<"$worker_pids")" -ge 2 ] || fail "expected 2 workers as strongroom-worker: $worker_pids"
for pid in $pids $worker_pids; do
  s=$(proc_status "$pid")
  uid=$strongroom_uid
  if grep -qw "$pid" <<<"$worker_pids"; then uid=$worker_uid; fi
  grep -Eq "^Uid:[[:space:]]+${uid}[[:space:]]" <<<"$s" || fail "pid $pid user: $s"
  # Only the spawner keeps CAP_SETUID and CAP_SETGID (0xc0), for starting workers; the bounding
  # set holds those two at most.
  if [ "$pid" != "$main" ] && grep -qw "$pid" <<<"$pids"; then
    grep -Eq '^CapEff:[[:space:]]+0+c0$' <<<"$s" || fail "spawner $pid capabilities: $s"
  else
    grep -Eq '^CapEff:[[:space:]]+0+$' <<<"$s" || fail "pid $pid capabilities: $s"
  fi
  grep -Eq '^CapBnd:[[:space:]]+0+(c0)?$' <<<"$s" || fail "pid $pid bounding set: $s"
  grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$s" || fail "pid $pid no_new_privs: $s"
  grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$s" || fail "pid $pid seccomp: $s"
  ok
done
# The daemon's own files under ProtectSystem=strict: only the state and log directories.
[ "$(in_root stat -c '%U %a' /var/lib/strongroom)" = "strongroom 700" ] || fail "state directory"
ok

echo "==> systemd: audit device, reload and logrotate"
api() {
  in_root curl -sf -H "X-Vault-Token: $token" -X "$1" "http://127.0.0.1:$port/v1/$2" ${3:+-d "$3"}
}
api PUT sys/audit/file '{"type":"file","options":{"file_path":"/var/log/strongroom/audit.log"}}' \
  >/dev/null || fail "enable the file audit device"
api PUT sys/mounts/secret '{"type":"kv","options":{"version":"2"}}' >/dev/null || fail "mount kv"
api PUT secret/data/before-rotation '{"data":{"v":"1"}}' >/dev/null || fail "write before rotation"
in_root systemctl reload strongroom || fail "systemctl reload"
in_journal "reopening audit files" || fail "reload did not reach the daemon (no 'reopening audit files')"
ok
# The shipped logrotate (packaging/etc/logrotate): dated names that never change, the newest
# rotated file plain (delaycompress), older ones gzip, nothing removed by count.
rotated_files() { in_root sh -c 'ls /var/log/strongroom/audit.log-* 2>/dev/null' || true; }
in_root logrotate -f /etc/logrotate.d/strongroom || fail "logrotate"
api PUT secret/data/after-rotation '{"data":{"v":"2"}}' >/dev/null || fail "write after rotation"
for _ in $(seq 1 20); do
  in_root grep -q after-rotation /var/log/strongroom/audit.log 2>/dev/null && break
  sleep 0.5
done
in_root grep -q after-rotation /var/log/strongroom/audit.log ||
  fail "after logrotate the daemon does not write to the new audit.log"
first=$(rotated_files)
case "$first" in
  /var/log/strongroom/audit.log-[0-9]*-[0-9]*) ;;
  *) fail "logrotate made '$first', want one audit.log-<date>-<seconds>" ;;
esac
in_root grep -q after-rotation "$first" &&
  fail "after logrotate the daemon still writes to the rotated file"
ok
# The auditor's check: the public key from the API, the rotated file (closed with a signed
# checkpoint) and the live one, offline, with the installed verifier.
api GET sys/audit/public-key | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["public_key"], end="")' \
  >"$root/opt/audit.pem" || fail "sys/audit/public-key"
in_root strongroom-audit verify --pubkey /opt/audit.pem "$first" \
  /var/log/strongroom/audit.log >"$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "strongroom-audit verify across the rotation"; }
in_root strongroom-audit verify --pubkey /opt/audit.pem --require-signed-tail \
  "$first" >"$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "the rotated file does not end with a signed checkpoint"; }
ok
# A second rotation (names carry the second, so not within the same one): the first file is now
# compressed, and the verifier reads it as it is, in the order the names sort.
sleep 1
in_root logrotate -f /etc/logrotate.d/strongroom || fail "second logrotate"
api PUT secret/data/after-second-rotation '{"data":{"v":"3"}}' >/dev/null || fail "write"
mapfile -t rotated < <(rotated_files)
if [ "${#rotated[@]}" != 2 ] || [ "${rotated[0]}" != "$first.gz" ]; then
  fail "after two rotations: ${rotated[*]} (want $first.gz and a new plain file)"
fi
case "${rotated[1]}" in *.gz) fail "the newest rotated file is compressed (no delaycompress)" ;; esac
in_root sh -c 'strongroom-audit verify --pubkey /opt/audit.pem /var/log/strongroom/audit.log-* \
  /var/log/strongroom/audit.log' >"$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "strongroom-audit verify over the compressed rotation"; }
# The first file archived elsewhere: the rest verifies from the checkpoint that ends it.
in_root sh -c "zcat '$first.gz' | tail -n 1 >/opt/start.line" || fail "last line of $first.gz"
in_root strongroom-audit verify --pubkey /opt/audit.pem --from-checkpoint /opt/start.line \
  "${rotated[1]}" /var/log/strongroom/audit.log >"$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "strongroom-audit verify --from-checkpoint"; }
ok

echo "==> systemd: restart (auto-unseal from the token, data kept)"
in_root systemctl restart strongroom || fail "systemctl restart"
status=$(in_root systemctl show -p StatusText --value strongroom)
case "$status" in *unsealed*) ok ;; *) fail "STATUS= after restart: $status" ;; esac
[ "$(health)" = 200 ] || fail "sys/health after restart: $(health)"
grep -q '"v":"1"' <<<"$(api GET secret/data/before-rotation)" || fail "secret lost across restart"
ok

echo "==> systemd: a killed spawner takes the service down visibly and systemd restarts it"
# Issue 15, item 14: the broker reaps the spawner, stops with status 1, Restart=on-failure.
old_main=$(in_root systemctl show -p MainPID --value strongroom)
spawner=$(in_root pgrep -u strongroom -P "$old_main" | head -1)
[ -n "$spawner" ] || fail "no spawner under main pid $old_main"
in_root kill -KILL "$spawner" || fail "kill -9 the spawner"
in_journal "stopping with status 1" || fail "the broker did not stop after its spawner died"
restarted=
for _ in $(seq 1 60); do
  new_main=$(in_root systemctl show -p MainPID --value strongroom)
  if [ "$(in_root systemctl is-active strongroom)" = active ] && [ "$new_main" != 0 ] &&
    [ "$new_main" != "$old_main" ]; then
    restarted=yes
    break
  fi
  sleep 0.5
done
[ -n "$restarted" ] || fail "systemd did not restart the unit after the spawner died"
[ "$(in_root systemctl show -p NRestarts --value strongroom)" -ge 1 ] || fail "NRestarts stays 0"
[ "$(health)" = 200 ] || fail "sys/health after the automatic restart: $(health)"
grep -q '"v":"1"' <<<"$(api GET secret/data/before-rotation)" || fail "secret lost across restart"
ok

echo "==> systemd: systemd-analyze security under the running manager"
score=$(in_root systemd-analyze security strongroom.service --no-pager |
  awk '/Overall exposure level/ {print $(NF-2)}')
echo "    systemd-analyze security strongroom.service: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "exposure $score is above 2.0"
ok

echo "==> systemd: stop, then purge"
in_root systemctl stop strongroom || fail "systemctl stop"
result=$(in_root systemctl show -p Result -p ExecMainStatus --value strongroom | tr '\n' ' ')
[ "$result" = "success 0 " ] || fail "stop: Result/ExecMainStatus = $result"
in_journal "the keyring was wiped from memory" || fail "no clean shutdown in the journal"
ok
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq strongroom >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; fail "apt-get purge"; }
in_root test ! -e /var/lib/strongroom || fail "purge left /var/lib/strongroom"
in_root test ! -e /etc/strongroom/strongroom.hcl || fail "purge left the configuration"
if in_root getent passwd strongroom >/dev/null; then fail "purge left the strongroom user"; fi
[ "$(in_root systemctl show -p LoadState --value strongroom)" = not-found ] ||
  fail "systemd still knows the unit after purge"
ok

echo "systemd test: $checks checks passed"
