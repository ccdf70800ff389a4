#!/usr/bin/env bash
# Builds the .deb and .rpm from a build directory, checks what they hold, installs the .deb on
# this machine (root), starts the daemon the way the installed unit does (its ExecStart command
# line, User=, Environment= and LoadCredential=, since PID 1 here may not be systemd) with a
# SoftHSM2 token, checks sys/health and sys/init, then removes (data kept) and purges (nothing
# left). Usage: tests/packaging/package_test.sh BUILD_DIR
set -euo pipefail

build=$(cd "${1:?usage: package_test.sh BUILD_DIR}" && pwd)
checks=0
fail() { echo "package test: FAIL: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs the package)"
if dpkg-query -W -f='${Status}' strongroom 2>/dev/null | grep -q "install ok installed"; then
  fail "strongroom is already installed on this machine; refusing to touch it"
fi

work=$(mktemp -d)
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  if dpkg-query -W -f='${Status}' strongroom 2>/dev/null | grep -q "installed"; then
    apt-get purge -y -qq strongroom >/dev/null 2>&1 || true
  fi
  rm -rf /run/credentials/strongroom.service "$work"
}
trap cleanup EXIT

echo "==> packages: cpack"
(cd "$build" && rm -f strongroom*.deb strongroom*.rpm &&
  cpack -G "DEB;RPM" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$build"/strongroom_*_amd64.deb)
rpm=$(ls "$build"/strongroom-*.x86_64.rpm)

expected=(
  /usr/bin/strongroomd /usr/bin/strongroom-audit /usr/bin/strongroom
  /usr/libexec/strongroom/strongroom-worker
  /usr/lib/systemd/system/strongroom.service /etc/strongroom/strongroom.hcl
  /etc/strongroom/softhsm2.conf /etc/logrotate.d/strongroom /usr/share/doc/strongroom/README.md
  /usr/share/doc/strongroom/threat-model.md
)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||' >"$work/deb.list"
rpm -qlp "$rpm" >"$work/rpm.list" 2>/dev/null
for f in "${expected[@]}"; do
  grep -qx "$f" "$work/deb.list" || fail "$f missing from the .deb"
  grep -qx "$f" "$work/rpm.list" || fail "$f missing from the .rpm"
  ok
done
if grep -Eq 'test|bench|fuzz' "$work/deb.list"; then fail "test or bench files in the .deb"; fi
ok
echo "    dpkg-deb -c and rpm -qlp list the expected files"

depends=$(dpkg-deb -f "$deb" Depends)
recommends=$(dpkg-deb -f "$deb" Recommends)
case "$depends" in *softhsm*) fail "softhsm2 must not be a hard dependency: $depends" ;; esac
case "$recommends" in *softhsm2*) ok ;; *) fail "softhsm2 not recommended: $recommends" ;; esac
case "$depends" in *libssl3*) ok ;; *) fail "libssl3 not in Depends: $depends" ;; esac
# strongroom-audit reads logrotate's compressed files with zlib.
case "$depends" in *zlib1g*) ok ;; *) fail "zlib1g not in Depends: $depends" ;; esac
# The userpass auth method hashes passwords with Botan 2's Argon2id.
case "$depends" in *libbotan-2-19*) ok ;; *) fail "libbotan-2-19 not in Depends: $depends" ;; esac
# strongroom csi-provider: gRPC and yaml-cpp.
for lib in libgrpc++1.51 libyaml-cpp0.7; do
  case "$depends" in *"$lib"*) ok ;; *) fail "$lib not in Depends: $depends" ;; esac
done
dpkg-deb --info "$deb" conffiles | grep -qx /etc/strongroom/strongroom.hcl || fail "conffiles"
ok
rpm -qp --configfiles "$rpm" 2>/dev/null | grep -qx /etc/strongroom/strongroom.hcl ||
  fail "strongroom.hcl is not %config in the .rpm"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q '^libssl.so.3' || fail "rpm requires libssl"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q '^libz.so.1' || fail "rpm requires zlib"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q '^libbotan-2.so.19' || fail "rpm requires botan"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q '^libgrpc++.so.1.51' || fail "rpm requires gRPC"
rpm -qp --requires "$rpm" 2>/dev/null | grep -q '^libyaml-cpp.so.0.7' || fail "rpm requires yaml-cpp"
if rpm -qp --requires "$rpm" 2>/dev/null | grep -qi softhsm; then fail "rpm requires softhsm"; fi
rpm -qp --scripts "$rpm" 2>/dev/null | grep -q 'useradd -r' || fail "rpm does not create the user"
ok
echo "    dependencies: $depends"
echo "    recommends:   $recommends"

echo "==> systemd unit"
unit_src="$(dirname "$0")/../../systemd/strongroom.service"
security=$(systemd-analyze security --offline=yes --threshold=20 "$unit_src" 2>&1) ||
  { echo "$security" | tail -25; fail "systemd-analyze security above 2.0"; }
echo "    $(echo "$security" | grep 'Overall exposure level')"
ok

echo "==> apt-get install ./$(basename "$deb")"
apt-get install -y -qq "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }
getent passwd strongroom >/dev/null || fail "no strongroom user"
[ "$(stat -c '%a %U' /var/lib/strongroom)" = "700 strongroom" ] || fail "/var/lib/strongroom mode"
[ -d /var/log/strongroom ] || fail "/var/log/strongroom missing"
[ "$(stat -c '%a %U:%G' /etc/strongroom/strongroom.hcl)" = "640 root:strongroom" ] ||
  fail "/etc/strongroom/strongroom.hcl ownership"
for b in strongroomd strongroom-audit strongroom; do
  "/usr/bin/$b" --help >/dev/null 2>&1 || fail "$b --help"
done
/usr/libexec/strongroom/strongroom-worker --help >/dev/null || fail "strongroom-worker --help"
ok
# Audit retention (SOC 2: two years): files are removed by age only, never by count, and are
# compressed a rotation after they were rotated (the daemon may still be ending the file).
lr=/etc/logrotate.d/strongroom
maxage=$(awk '$1 == "maxage" {print $2}' "$lr")
[ "${maxage:-0}" -ge 731 ] || fail "logrotate removes audit files after ${maxage:-?} days (< 2 years)"
for directive in 'rotate -1' compress delaycompress dateext; do
  grep -Eqx "[[:space:]]*${directive}[[:space:]]*" "$lr" || fail "logrotate lacks '$directive'"
done
if command -v logrotate >/dev/null; then
  logrotate -d "$lr" >"$work/logrotate.log" 2>&1 || { cat "$work/logrotate.log"; fail "logrotate -d"; }
fi
ok
unit=/usr/lib/systemd/system/strongroom.service
verify=$(systemd-analyze verify "$unit" 2>&1) || { echo "$verify"; fail "systemd-analyze verify"; }
echo "    systemd-analyze verify: ok${verify:+ ($verify)}"
ok

echo "==> start as the unit does"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
softhsm_conf=$(sed -n 's/^Environment=SOFTHSM2_CONF=//p' "$unit")
run_user=$(sed -n 's/^User=//p' "$unit")
[ -n "$exec_start" ] && [ -n "$softhsm_conf" ] && [ "$run_user" = strongroom ] || fail "unit fields"
# AmbientCapabilities=CAP_SETUID CAP_SETGID as setpriv's "+setuid,+setgid" (the workers' change of
# user needs them; the broker drops them).
unit_caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ "$unit_caps" = "+setuid,+setgid" ] || fail "AmbientCapabilities: $unit_caps"
getent passwd strongroom-worker >/dev/null || fail "no strongroom-worker user (worker_user)"
as_service() { setpriv --reuid="$run_user" --regid="$run_user" --init-groups env -i \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin SOFTHSM2_CONF="$softhsm_conf" "$@"; }
# What an operator does once: the PIN file, the token (as the service user), a free port.
umask 077
echo 1234 >/etc/strongroom/hsm-pin
as_service softhsm2-util --init-token --free --label strongroom --pin 1234 --so-pin 87654321 \
  >/dev/null
sed -i 's|address     = "127.0.0.1:8200"|address     = "127.0.0.1:0"|' /etc/strongroom/strongroom.hcl
# What systemd does for LoadCredential=hsm-pin:/etc/strongroom/hsm-pin.
cred=$(sed -n 's/^LoadCredential=hsm-pin://p' "$unit")
install -d -m 0700 -o strongroom /run/credentials/strongroom.service
install -m 0400 -o strongroom "$cred" /run/credentials/strongroom.service/hsm-pin
# (exec: $! is the daemon itself, which gets the SIGTERM below.)
# shellcheck disable=SC2086  # ExecStart is a command line
(exec setpriv --reuid="$run_user" --regid="$run_user" --init-groups \
  --bounding-set="-all,$unit_caps" --inh-caps="-all,$unit_caps" --ambient-caps="$unit_caps" \
  --no-new-privs env -i \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin SOFTHSM2_CONF="$softhsm_conf" $exec_start \
  >"$work/daemon.log" 2>&1) &
daemon_pid=$!
addr=
for _ in $(seq 1 200); do
  addr=$(grep -o 'API on http://127.0.0.1:[0-9]*' "$work/daemon.log" | sed 's|API on ||' || true)
  [ -n "$addr" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log"; fail "the daemon exited"; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/daemon.log"; fail "no API address"; }
health=$(curl -s -o /dev/stderr -w '%{http_code}' "$addr/v1/sys/health" 2>"$work/health.json")
[ "$health" = 501 ] || fail "sys/health before init answered $health"
grep -q '"initialized":false' "$work/health.json" || fail "health body: $(cat "$work/health.json")"
curl -sf -X PUT -d '{"recovery_shares":1,"recovery_threshold":1}' "$addr/v1/sys/init" \
  >"$work/init.json" || { cat "$work/daemon.log"; fail "sys/init"; }
health=$(curl -s -o "$work/health.json" -w '%{http_code}' "$addr/v1/sys/health")
[ "$health" = 200 ] || fail "sys/health after init answered $health"
grep -q '"sealed":false' "$work/health.json" || fail "sealed after init"
ok
echo "    sys/health 501 before init, 200 after (initialised, unsealed)"
# The spawner (this daemon's, not other strongroom processes on the machine) runs as the service
# user; its workers as strongroom-worker, never as the broker's user (issue 15, item 12); no root
# anywhere, and no capability left in the broker or the workers.
spawner=$(pgrep -P "$daemon_pid" | head -1)
[ -n "$spawner" ] || fail "no spawner process"
[ "$(ps -o user= -p "$spawner")" = strongroom ] || fail "spawner user: $(ps -o user= -p "$spawner")"
users=$(ps -o user= --ppid "$spawner")
[ "$(echo "$users" | grep -c .)" -ge 2 ] || fail "workers not found: $users"
if echo "$users" | grep -qv '^strongroom-worker$'; then fail "workers not strongroom-worker: $users"; fi
for pid in "$daemon_pid" $(pgrep -P "$spawner"); do
  grep -Eq '^CapEff:[[:space:]]+0+$' "/proc/$pid/status" || fail "pid $pid keeps capabilities"
done
ok
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
[ "$rc" = 0 ] || { tail -20 "$work/daemon.log"; fail "the daemon exited with $rc on SIGTERM"; }
daemon_pid=

echo "==> remove keeps data; purge leaves nothing"
apt-get remove -y -qq strongroom >/dev/null 2>&1 || fail "remove"
[ ! -e /usr/bin/strongroomd ] || fail "strongroomd still installed after remove"
[ -d /var/lib/strongroom/data ] && [ -d /var/lib/strongroom/tokens ] || fail "remove lost data"
[ -f /etc/strongroom/strongroom.hcl ] || fail "remove lost the configuration"
getent passwd strongroom >/dev/null || fail "remove deleted the user"
ok
apt-get purge -y -qq strongroom >/dev/null 2>&1 || fail "purge"
for p in /var/lib/strongroom /var/log/strongroom /etc/strongroom /etc/logrotate.d/strongroom \
  /usr/lib/systemd/system/strongroom.service /usr/libexec/strongroom; do
  [ ! -e "$p" ] || fail "$p left after purge"
done
if getent passwd strongroom >/dev/null; then fail "user left after purge"; fi
if getent group strongroom >/dev/null; then fail "group left after purge"; fi
if getent passwd strongroom-worker >/dev/null; then fail "worker user left after purge"; fi
ok
echo "package test: $checks checks passed"
