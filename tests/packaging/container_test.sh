#!/usr/bin/env bash
# Builds packaging/container/Dockerfile with podman and runs the image the way the Kubernetes
# manifests do (deploy/kubernetes/40-statefulset.yaml): uid 10001, read-only root filesystem, no
# capabilities, no_new_privs, podman's default seccomp profile (the RuntimeDefault equivalent), the
# data volume and the audit directory mounted, the PIN from a mounted secret file. Checks: first
# start creates the token and initialises (init.json 0600), the API serves, the image's
# HEALTHCHECK passes, `podman stop` (SIGTERM through tini) ends it with status 0 and a sealed
# keyring, and a second container on the same volume reuses the token and unseals itself with the
# data intact.
#
# The base image: no image registry is reachable here, so debian:12-slim is made locally from the
# Debian 12 archive in this machine's apt sources (debootstrap --variant=minbase, as the official
# image is made from the same archive) unless the image store already has it.
# Usage: tests/packaging/container_test.sh [--binaries=BUILD_DIR] (as root, from anywhere in the
# checkout). --binaries: the image takes that build's binaries (the Dockerfile's prebuilt stage)
# instead of compiling the tree in its build stage; scripts/test.sh passes its own build.
set -euo pipefail
# Output is matched from variables, not through "cmd | grep -q": with pipefail, grep -q leaving
# early can fail the pipeline (the writer gets SIGPIPE).
# shellcheck source=tests/packaging/lib.sh
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
binaries=""
for arg in "$@"; do
  case $arg in
    --binaries=*) binaries=$(cd "${arg#--binaries=}" && pwd) ;;
    *) echo "usage: $0 [--binaries=BUILD_DIR]" >&2; exit 2 ;;
  esac
done
checks=0
fail() {
  echo "container test: FAIL: $*" >&2
  if [ -f "${work:-}/podman.log" ]; then tail -5 "$work/podman.log" >&2; fi
  for c in sr-test-1 sr-test-2; do podman logs "$c" 2>&1 | tail -20 >&2 || true; done
  exit 1
}
ok() { checks=$((checks + 1)); }

[ "$(id -u)" = 0 ] || fail "must run as root"
# Without systemd as PID 1, podman logs (to podman.log here) that it cannot add the periodic
# health-check timers; `podman healthcheck run` below runs the check itself.
# runc: crun 1.8 refuses this kind of machine's hybrid cgroup layout. The limits: podman's
# defaults (the host's hard limits) cannot be set from inside a machine whose limits are capped.
podman=(podman --runtime runc)
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
image=localhost/strongroom:test
# The containers share the machine's network (--network host): a free port.
port=$(free_port)

work=$(mktemp -d /var/tmp/strongroom-container-XXXXXX)
cleanup() {
  "${podman[@]}" rm -f -t 0 --ignore sr-test-1 sr-test-2 >/dev/null 2>&1 || true
  rm -rf "$work" "$repo/packaging/container/prebuilt"
}
trap cleanup EXIT
cleanup_containers_of_an_earlier_run=$("${podman[@]}" rm -f -t 0 --ignore sr-test-1 sr-test-2 2>&1) ||
  fail "cannot remove containers of an earlier run: $cleanup_containers_of_an_earlier_run"

if ! "${podman[@]}" image exists docker.io/library/debian:12-slim; then
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || fail "no bookworm archive in the apt sources"
  echo "==> container: base image debian:12-slim from $mirror (debootstrap --variant=minbase)"
  debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  rm -rf "$work/base/var/cache/apt/archives/"*.deb "$work/base/var/lib/apt/lists/"*
  tar -C "$work/base" -c . | "${podman[@]}" import - docker.io/library/debian:12-slim >/dev/null
  rm -rf "$work/base"
fi

echo "==> container: podman build -f packaging/container/Dockerfile${binaries:+ (binaries of $binaries)}"
build_args=()
if [ -n "$binaries" ]; then
  rm -rf "$repo/packaging/container/prebuilt"
  (cd "$repo" && packaging/container/stage-binaries.sh "$binaries" packaging/container/prebuilt) ||
    fail "cannot stage the binaries of $binaries"
  build_args=(--build-arg STRONGROOM_BINARIES=prebuilt)
fi
# The build stage's compiler cache and its libraft builds (cmake/Libraft.cmake) live outside the
# image, so rebuilds are quick.
mkdir -p /var/cache/strongroom-container-ccache /var/cache/strongroom-container-libraft
# --format docker: the OCI image format has no HEALTHCHECK (podman and buildah drop it).
"${podman[@]}" build --format docker --pull=never "${limits[@]}" --network host \
  --volume /var/cache/strongroom-container-ccache:/root/.ccache \
  --volume /var/cache/strongroom-container-libraft:/root/.cache/strongroom-libraft \
  "${build_args[@]}" -f "$repo/packaging/container/Dockerfile" -t "$image" "$repo" >"$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log"; fail "podman build"; }
# The build stage (1 GiB) would pile up with every changed checkout; the compiler cache above is
# what keeps the next build quick.
"${podman[@]}" image prune -f >/dev/null
ok
[ "$("${podman[@]}" image inspect "$image" --format '{{.Config.User}}')" = 10001:10001 ] ||
  fail "the image does not run as 10001:10001"
ok

volume=$work/data
audit=$work/audit
mkdir -p "$volume" "$audit" "$work/secrets"
chown 10001:10001 "$volume" "$audit"
chmod 0700 "$volume" "$audit"
printf 'container-pin-4711\n' >"$work/secrets/hsm-pin"
chmod 0444 "$work/secrets/hsm-pin"

# As the StatefulSet runs it: non-root, read-only root, no capabilities, no_new_privs.
run() { # name
  "${podman[@]}" run -d --name "$1" "${limits[@]}" --network host \
    --user 10001:10001 --read-only --cap-drop=ALL --security-opt no-new-privileges \
    -v "$volume:/var/lib/strongroom" -v "$audit:/var/log/strongroom" \
    -v "$work/secrets:/run/secrets/strongroom:ro" \
    -e STRONGROOM_PIN_FILE=/run/secrets/strongroom/hsm-pin \
    -e STRONGROOM_TLS_DISABLE=true -e "STRONGROOM_LISTEN=127.0.0.1:$port" \
    "$image" >/dev/null 2>>"$work/podman.log"
}
url=http://127.0.0.1:$port/v1
wait_health() { # expected code
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/sys/health")" = "$1" ] && return 0
    sleep 0.5
  done
  fail "sys/health never answered $1 (last: $(curl -s "$url/sys/health"))"
}

echo "==> container: first start (token created, initialised)"
run sr-test-1
wait_health 200
for _ in $(seq 1 40); do [ -s "$volume/init.json" ] && break; sleep 0.5; done
[ "$(stat -c '%u %a' "$volume/init.json")" = "10001 600" ] || fail "init.json: $(stat -c '%u %a' "$volume/init.json")"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_token"])' "$volume/init.json")
[ -n "$(ls -A "$volume/tokens")" ] || fail "no token in the volume"
ok
curl -sf -H "X-Vault-Token: $token" -X PUT "$url/sys/mounts/secret" \
  -d '{"type":"kv","options":{"version":"2"}}' >/dev/null || fail "mount kv"
curl -sf -H "X-Vault-Token: $token" -X PUT "$url/secret/data/container" \
  -d '{"data":{"answer":"42"}}' >/dev/null || fail "write a secret"
curl -sf -H "X-Vault-Token: $token" -X PUT "$url/sys/audit/file" \
  -d '{"type":"file","options":{"file_path":"/var/log/strongroom/audit.log"}}' >/dev/null ||
  fail "audit device in the mounted audit directory"
ok
"${podman[@]}" healthcheck run sr-test-1 >/dev/null 2>&1 || fail "the image's HEALTHCHECK failed"
ok
# Processes inside: uid 10001 only, no capabilities, seccomp on (the workers' own filter too).
top=$("${podman[@]}" top sr-test-1 user capeff seccomp args 2>/dev/null | tail -n +2)
grep -q strongroom-worker <<<"$top" || fail "no workers in the container: $top"
awk '$1 != "10001" && $1 != "strongroom" {bad=1} END {exit bad}' <<<"$top" ||
  fail "a process not running as 10001: $top"
ok

echo "==> container: podman stop (SIGTERM through tini)"
"${podman[@]}" stop -t 20 sr-test-1 >/dev/null 2>>"$work/podman.log"
[ "$("${podman[@]}" inspect sr-test-1 --format '{{.State.ExitCode}}')" = 0 ] ||
  fail "exit status after SIGTERM: $("${podman[@]}" inspect sr-test-1 --format '{{.State.ExitCode}}')"
for _ in $(seq 1 20); do # conmon may still be writing the last lines
  grep -q "the keyring was wiped from memory" <<<"$("${podman[@]}" logs sr-test-1 2>&1)" && break
  sleep 0.5
done
grep -q "the keyring was wiped from memory" <<<"$("${podman[@]}" logs sr-test-1 2>&1)" ||
  fail "no clean shutdown in the log"
ok

echo "==> container: second start on the same volume (token reused, unsealed, data kept)"
init_before=$(sha256sum <"$volume/init.json")
run sr-test-2
wait_health 200
grep -q '"answer":"42"' <<<"$(curl -sf -H "X-Vault-Token: $token" "$url/secret/data/container")" ||
  fail "the secret did not survive the restart"
[ "$(sha256sum <"$volume/init.json")" = "$init_before" ] || fail "init.json rewritten on the second start"
if grep -q "first start" <<<"$("${podman[@]}" logs sr-test-2 2>&1)"; then fail "second start re-initialised"; fi
grep -q '"type":"response"' "$audit/audit.log" || fail "no audit records in the mounted directory"
ok
"${podman[@]}" stop -t 20 sr-test-2 >/dev/null 2>>"$work/podman.log"
[ "$("${podman[@]}" inspect sr-test-2 --format '{{.State.ExitCode}}')" = 0 ] || fail "second stop"
ok

echo "container test: $checks checks passed"
