#!/bin/sh
# Entrypoint of the strongroom container image (see docs/deployment.md).
#
# First start, on an empty data volume ($STRONGROOM_DATA):
#   1. a SoftHSM2 token directory and softhsm2.conf in the volume, a token initialised with the
#      user PIN from $STRONGROOM_PIN_FILE (a mounted secret) or $STRONGROOM_PIN and a random SO
#      PIN kept in the volume (mode 0600);
#   2. strongroom.hcl in the volume, from the environment (unless $STRONGROOM_CONFIG names one);
#      with TLS its listener keeps the private key in the token (tls_key_label), not in a file;
#   2b. when the configuration's listener has a tls_key_label and its tls_cert_file does not
#      exist yet: the key pair generated in the token (strongroomd -tls-generate-key), a
#      certificate signing request for it in $DATA/tls/tls.csr, and a self-signed certificate
#      (signed by the token) at tls_cert_file; replace it with a CA-signed one from the CSR;
#   2c. with STRONGROOM_CLUSTER_CERTS (a Raft cluster; a mounted folder of certificates): this
#      node's cluster key generated in the token (cluster_key_label: strongroomd
#      -cluster-generate-key; it never leaves the token) or, with cluster_key_file, in the volume
#      (mode 0600), with a certificate signing request beside cluster_cert_file (tls.csr) that
#      names the node id; the script then waits
#      until the folder holds $STRONGROOM_CLUSTER_CERTS/<node_id>.crt for that key (issued with
#      packaging/cluster-certs.sh sign) and installs it as cluster_cert_file;
#   3. strongroomd in the background, sys/init once it answers (STRONGROOM_AUTO_INIT), the answer
#      (recovery keys and root token) written to $DATA/init.json, mode 0600: move it out.
#      In a Raft cluster only the host named by STRONGROOM_AUTO_INIT_HOST initialises; the others
#      join it (retry_join in the configuration).
# Later starts reuse the token and the configuration and exec strongroomd, which unseals itself
# through the token. Started as root, the script drops to $STRONGROOM_USER first.
#
# "entrypoint.sh healthcheck" is the image's HEALTHCHECK: it succeeds while sys/health answers.
# "entrypoint.sh <other arguments>" runs strongroomd with those arguments (e.g. -version), never
# as root.
set -eu

DATA=${STRONGROOM_DATA:-/var/lib/strongroom}
STRONGROOMD=${STRONGROOMD:-/usr/bin/strongroomd}
SOFTHSM2_LIB=${SOFTHSM2_LIB:-/usr/lib/softhsm/libsofthsm2.so}
PKCS11_TOOL=${PKCS11_TOOL:-pkcs11-tool}
TOKEN_LABEL=${STRONGROOM_TOKEN_LABEL:-strongroom}
LISTEN=${STRONGROOM_LISTEN:-0.0.0.0:8200}
TLS_DISABLE=${STRONGROOM_TLS_DISABLE:-false}
TLS_KEY_LABEL=${STRONGROOM_TLS_KEY_LABEL:-strongroom-tls}
RUN_USER=${STRONGROOM_USER:-strongroom}
AUTO_INIT=${STRONGROOM_AUTO_INIT:-true}
if [ -n "${STRONGROOM_AUTO_INIT_HOST:-}" ] &&
  [ "$(cat /proc/sys/kernel/hostname)" != "$STRONGROOM_AUTO_INIT_HOST" ]; then
  AUTO_INIT=false
fi
RECOVERY_SHARES=${STRONGROOM_RECOVERY_SHARES:-5}
RECOVERY_THRESHOLD=${STRONGROOM_RECOVERY_THRESHOLD:-3}
START_TIMEOUT=${STRONGROOM_START_TIMEOUT:-60}
CONFIG=${STRONGROOM_CONFIG:-$DATA/strongroom.hcl}
INITIALIZED_MARK=$DATA/initialized

log() { printf '%s entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The URL this script (and the health check) use: the listener, on loopback when it listens on
# every address. TLS is not verified on loopback: the certificate names the service, not
# 127.0.0.1, and the check is about liveness, not identity.
local_url() {
  if [ -n "${STRONGROOM_LOCAL_ADDR:-}" ]; then
    printf '%s' "$STRONGROOM_LOCAL_ADDR"
    return
  fi
  host=${LISTEN%:*}
  port=${LISTEN##*:}
  case "$host" in
    '' | 0.0.0.0 | '[::]' | '::') host=127.0.0.1 ;;
  esac
  if [ "$TLS_DISABLE" = true ]; then
    printf 'http://%s:%s' "$host" "$port"
  else
    printf 'https://%s:%s' "$host" "$port"
  fi
}

# HTTP status of a request to the local API ("000" when nothing answers).
http_status() { # method path [curl args...]
  method=$1
  path=$2
  shift 2
  curl -sk -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" "$@" "$(local_url)/v1/$path" || true
}

if [ "${1:-}" = healthcheck ]; then
  exec curl -fsSk -o /dev/null --max-time 5 \
    "$(local_url)/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200"
fi

# --- privileges ---------------------------------------------------------------------------------

if [ "$(id -u)" = 0 ]; then
  uid=$(id -u "$RUN_USER" 2>/dev/null) || die "started as root and user \"$RUN_USER\" (STRONGROOM_USER) does not exist"
  [ "$uid" != 0 ] || die "STRONGROOM_USER must not be root"
  gid=$(id -g "$RUN_USER")
  mkdir -p "$DATA"
  # Only what the script creates is handed over; a mounted PIN file stays as it is.
  chown "$uid:$gid" "$DATA"
  for f in tokens data tls softhsm2.conf strongroom.hcl so-pin init.json initialized; do
    if [ -e "$DATA/$f" ]; then chown -R "$uid:$gid" "$DATA/$f"; fi
  done
  log "dropping root: continuing as $RUN_USER ($uid:$gid)"
  exec setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all -- "$0" "$@"
fi

if [ $# -gt 0 ]; then
  # e.g. -version, or -config=$DATA/strongroom.hcl -audit-public-key (which reads the token).
  if [ -f "$DATA/softhsm2.conf" ]; then export SOFTHSM2_CONF="$DATA/softhsm2.conf"; fi
  exec "$STRONGROOMD" "$@"
fi

# --- PIN -----------------------------------------------------------------------------------------

# The PIN never appears in a command line or in the output: strongroomd reads it through its
# file:// or env:// PIN spec, pkcs11-tool through env:VAR.
if [ -n "${STRONGROOM_PIN_FILE:-}" ]; then
  [ -r "$STRONGROOM_PIN_FILE" ] || die "STRONGROOM_PIN_FILE ($STRONGROOM_PIN_FILE) is not a readable file"
  pin_spec="file://$STRONGROOM_PIN_FILE"
  pin_source="file $STRONGROOM_PIN_FILE"
  # pkcs11-tool reads it from this variable (first line, as strongroomd reads the file).
  IFS= read -r STRONGROOM_TOKEN_PIN_ <"$STRONGROOM_PIN_FILE" || [ -n "${STRONGROOM_TOKEN_PIN_:-}" ] ||
    die "STRONGROOM_PIN_FILE ($STRONGROOM_PIN_FILE) is empty"
elif [ -n "${STRONGROOM_PIN:-}" ]; then
  pin_spec="env://STRONGROOM_PIN"
  pin_source="environment variable STRONGROOM_PIN"
  STRONGROOM_TOKEN_PIN_=$STRONGROOM_PIN
else
  die "no HSM PIN: set STRONGROOM_PIN_FILE to a file holding the token's user PIN (a mounted secret), or STRONGROOM_PIN"
fi
pin_length=$(printf '%s' "$STRONGROOM_TOKEN_PIN_" | wc -c)
if [ "$pin_length" -lt 4 ] || [ "$pin_length" -gt 255 ]; then
  die "the HSM PIN (from $pin_source) must be 4 to 255 characters long"
fi

# --- token ---------------------------------------------------------------------------------------

umask 077
mkdir -p "$DATA" || die "cannot create the data directory $DATA"
[ -w "$DATA" ] || die "the data directory $DATA is not writable by uid $(id -u)"
export SOFTHSM2_CONF="$DATA/softhsm2.conf"
if [ ! -f "$SOFTHSM2_CONF" ]; then
  mkdir -p "$DATA/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$DATA/tokens" \
    >"$SOFTHSM2_CONF"
fi

if [ -z "$(ls -A "$DATA/tokens" 2>/dev/null)" ]; then
  log "first start: initialising SoftHSM2 token \"$TOKEN_LABEL\" in $DATA/tokens (user PIN from $pin_source)"
  if [ ! -s "$DATA/so-pin" ]; then
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$DATA/so-pin.tmp"
    mv "$DATA/so-pin.tmp" "$DATA/so-pin"
  fi
  IFS= read -r STRONGROOM_SO_PIN_ <"$DATA/so-pin" || true
  export STRONGROOM_SO_PIN_ STRONGROOM_TOKEN_PIN_
  "$PKCS11_TOOL" --module "$SOFTHSM2_LIB" --init-token --label "$TOKEN_LABEL" \
    --so-pin env:STRONGROOM_SO_PIN_ >/dev/null || die "cannot initialise the token"
  "$PKCS11_TOOL" --module "$SOFTHSM2_LIB" --token-label "$TOKEN_LABEL" --login --login-type so \
    --so-pin env:STRONGROOM_SO_PIN_ --init-pin --pin env:STRONGROOM_TOKEN_PIN_ >/dev/null ||
    die "cannot set the token's user PIN"
  log "token initialised; its SO PIN is in $DATA/so-pin (mode 0600)"
fi
unset STRONGROOM_SO_PIN_ STRONGROOM_TOKEN_PIN_

# --- configuration -------------------------------------------------------------------------------

if [ ! -f "$CONFIG" ]; then
  [ "$CONFIG" = "$DATA/strongroom.hcl" ] || die "STRONGROOM_CONFIG ($CONFIG) does not exist"
  if [ "$TLS_DISABLE" = true ]; then
    tls='  tls_disable = true'
  elif [ -n "${STRONGROOM_TLS_KEY_FILE:-}" ]; then
    # A key file: the broker reads it and hands it to every worker. Only when asked for.
    [ -n "${STRONGROOM_TLS_CERT_FILE:-}" ] ||
      die "STRONGROOM_TLS_KEY_FILE needs STRONGROOM_TLS_CERT_FILE (or leave both unset: the key is then made in the token)"
    log "warning: STRONGROOM_TLS_KEY_FILE: the TLS private key is a file and sits in every worker's memory; unset it to keep the key in the token"
    tls=$(printf '  tls_cert_file = "%s"\n  tls_key_file  = "%s"' \
      "$STRONGROOM_TLS_CERT_FILE" "$STRONGROOM_TLS_KEY_FILE")
  else
    # The default: the private key lives in the token; the certificate is a file (made below
    # on first start unless STRONGROOM_TLS_CERT_FILE names an existing one).
    tls=$(printf '  tls_cert_file = "%s"\n  tls_key_label = "%s"' \
      "${STRONGROOM_TLS_CERT_FILE:-$DATA/tls/tls.crt}" "$TLS_KEY_LABEL")
  fi
  {
    printf '# Written by the container entrypoint on first start; edit or delete to regenerate.\n'
    if [ -n "${STRONGROOM_API_ADDR:-}" ]; then printf 'api_addr = "%s"\n' "$STRONGROOM_API_ADDR"; fi
    if [ -n "${STRONGROOM_WORKERS:-}" ]; then printf 'workers = %s\n' "$STRONGROOM_WORKERS"; fi
    printf '\nlistener "tcp" {\n  address = "%s"\n%s\n}\n' "$LISTEN" "$tls"
    printf '\nstorage "rocksdb" {\n  path = "%s"\n}\n' "$DATA/data"
    printf '\nseal "pkcs11" {\n  lib         = "%s"\n  token_label = "%s"\n  pin         = "%s"\n}\n' \
      "$SOFTHSM2_LIB" "$TOKEN_LABEL" "$pin_spec"
  } >"$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
  log "wrote $CONFIG"
fi

# --- TLS key in the token ------------------------------------------------------------------------

# The first value of `key = "value"` in the configuration's text (the listener's TLS keys occur
# once; a commented-out line does not count).
config_value() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$CONFIG" | head -n 1
}

# The certificate's names: STRONGROOM_TLS_CERT_HOSTS, else this host, the api_addr's host and
# loopback.
cert_hosts() {
  if [ -n "${STRONGROOM_TLS_CERT_HOSTS:-}" ]; then
    printf '%s' "$STRONGROOM_TLS_CERT_HOSTS"
    return
  fi
  hosts="localhost,127.0.0.1,$(cat /proc/sys/kernel/hostname)"
  api_host=$(printf '%s' "${STRONGROOM_API_ADDR:-}" | sed -n 's,^[a-z]*://\([^:/]*\).*,\1,p')
  if [ -n "$api_host" ]; then hosts="$hosts,$api_host"; fi
  printf '%s' "$hosts"
}

tls_label=$(config_value tls_key_label)
tls_cert=$(config_value tls_cert_file)
if [ -n "$tls_label" ] && [ -n "$tls_cert" ] && [ ! -s "$tls_cert" ]; then
  hosts=$(cert_hosts)
  mkdir -p "$DATA/tls"
  # The CSR doubles as the test whether the key exists: strongroomd finds it by its label.
  if ! out=$("$STRONGROOMD" -config="$CONFIG" -tls-csr="$DATA/tls/tls.csr" -tls-cert-hosts="$hosts" 2>&1); then
    case "$out" in
      *"no TLS key labelled"*)
        log "first start: generating the TLS key \"$tls_label\" in the token (ECDSA P-256, never leaves it)"
        "$STRONGROOMD" -config="$CONFIG" -tls-generate-key >"$DATA/tls/tls-key.pub.pem" ||
          die "cannot generate the TLS key in the token"
        "$STRONGROOMD" -config="$CONFIG" -tls-csr="$DATA/tls/tls.csr" -tls-cert-hosts="$hosts" ||
          die "cannot write a certificate signing request for the TLS key"
        ;;
      *) die "the TLS key \"$tls_label\" in the token: $out" ;;
    esac
  fi
  tls_dir=$(dirname "$tls_cert")
  if ! mkdir -p "$tls_dir" 2>/dev/null || [ ! -w "$tls_dir" ]; then
    die "tls_cert_file $tls_cert does not exist and cannot be written: have $DATA/tls/tls.csr signed and install the chain there"
  fi
  "$STRONGROOMD" -config="$CONFIG" -tls-self-signed-cert="$tls_cert" -tls-cert-hosts="$hosts" ||
    die "cannot write a self-signed certificate for the TLS key"
  log "TLS: self-signed certificate for $hosts at $tls_cert (valid one year; clients trust that file, or replace it with a CA-signed chain for $DATA/tls/tls.csr)"
fi

# --- cluster key (Raft) --------------------------------------------------------------------------

# The public key (PEM) of certificate $1.
cert_pubkey() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }

cluster_key=$(config_value cluster_key_file)
cluster_label=$(config_value cluster_key_label)
cluster_cert=$(config_value cluster_cert_file)
if [ -n "${STRONGROOM_CLUSTER_CERTS:-}" ] && [ -n "$cluster_cert" ] &&
  { [ -n "$cluster_label" ] || [ -n "$cluster_key" ]; }; then
  node=${STRONGROOM_RAFT_NODE_ID:-$(cat /proc/sys/kernel/hostname)}
  key_dir=$(dirname "$cluster_cert")
  mkdir -p "$key_dir"
  csr="$key_dir/tls.csr"
  if [ -n "$cluster_label" ]; then
    # The key lives in the token: made there once. Its request is written again at every start
    # (cheap, signed by the token) and replaces tls.csr when that was for another key: a request
    # left by an earlier key file (an upgraded pod) or by a token since made anew.
    hosts_flag=-cluster-cert-hosts="$(cat /proc/sys/kernel/hostname)"
    if ! out=$("$STRONGROOMD" -config="$CONFIG" -cluster-csr="$csr.tmp" "$hosts_flag" 2>&1); then
      case "$out" in
        *"no cluster key labelled"*)
          "$STRONGROOMD" -config="$CONFIG" -cluster-generate-key -cluster-csr="$csr.tmp" \
            "$hosts_flag" >/dev/null ||
            die "cannot generate the cluster key \"$cluster_label\" in the token"
          log "generated node $node's cluster key \"$cluster_label\" in the token (it never leaves it)"
          ;;
        *) die "cannot write a request for the cluster key \"$cluster_label\": $out" ;;
      esac
    fi
    want=$(openssl req -in "$csr.tmp" -noout -pubkey 2>/dev/null) || die "cannot read $csr.tmp"
    if [ -s "$csr" ] && [ "$(openssl req -in "$csr" -noout -pubkey 2>/dev/null)" = "$want" ]; then
      rm -f "$csr.tmp"
    else
      mv "$csr.tmp" "$csr" || die "cannot write $csr"
      log "node $node's cluster key is \"$cluster_label\" in the token; its request (a certificate for it is needed): $csr"
    fi
  else
    if [ ! -s "$cluster_key" ]; then
      (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$cluster_key.tmp" && mv "$cluster_key.tmp" "$cluster_key") ||
        die "cannot generate the cluster key $cluster_key"
      openssl req -new -key "$cluster_key" -subj "/CN=$node" -out "$csr" ||
        die "cannot write a certificate signing request for the cluster key"
      log "first start: generated node $node's cluster key file (a copy of this volume is this node; prefer cluster_key_label); its request: $csr"
    fi
    want=$(openssl pkey -in "$cluster_key" -pubout 2>/dev/null) || die "cannot read $cluster_key"
  fi
  issued="$STRONGROOM_CLUSTER_CERTS/$node.crt"
  until [ -s "$issued" ] && [ "$(cert_pubkey "$issued")" = "$want" ]; do
    log "waiting for $issued, this node's cluster certificate: sign $csr with packaging/cluster-certs.sh sign DIR $node CSR HOST (docs/operations.md, \"Node certificates\") and add it to the strongroom-cluster-tls Secret"
    sleep "${STRONGROOM_CLUSTER_CERT_POLL:-30}"
  done
  if ! cmp -s "$issued" "$cluster_cert"; then
    if ! { cp "$issued" "$cluster_cert.tmp" && mv "$cluster_cert.tmp" "$cluster_cert"; }; then
      die "cannot install $issued as $cluster_cert"
    fi
    log "installed node $node's cluster certificate $cluster_cert"
  fi
fi

# --- run -----------------------------------------------------------------------------------------

if [ "$AUTO_INIT" != true ] || [ -f "$INITIALIZED_MARK" ]; then
  exec "$STRONGROOMD" -config="$CONFIG"
fi

# First start: strongroomd runs in the background while sys/init is made; signals are forwarded.
"$STRONGROOMD" -config="$CONFIG" &
pid=$!
stopping=false
trap 'stopping=true; kill -TERM "$pid" 2>/dev/null || true' TERM
trap 'stopping=true; kill -INT "$pid" 2>/dev/null || true' INT

# Whether strongroomd still runs (kill -0 also succeeds on a zombie the shell has not reaped).
alive() { [ -r "/proc/$pid/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"; }

# Waits for strongroomd's exit and exits with its status.
wait_daemon() {
  while :; do
    status=0
    wait "$pid" || status=$?
    kill -0 "$pid" 2>/dev/null || exit "$status"
  done
}

waited=0
code=000
while [ "$stopping" = false ] && alive; do
  code=$(http_status GET sys/health)
  [ "$code" = 000 ] || break
  if [ "$waited" -ge "$((START_TIMEOUT * 5))" ]; then
    log "error: strongroomd did not answer on $(local_url) within ${START_TIMEOUT}s; stopping it"
    kill -TERM "$pid" 2>/dev/null || true
    wait_daemon
  fi
  sleep 0.2
  waited=$((waited + 1))
done
if [ "$stopping" = true ] || ! alive; then wait_daemon; fi

if [ "$code" = 501 ]; then
  log "initialising strongroom (recovery_shares=$RECOVERY_SHARES, recovery_threshold=$RECOVERY_THRESHOLD)"
  body=$(printf '{"recovery_shares":%s,"recovery_threshold":%s}' "$RECOVERY_SHARES" "$RECOVERY_THRESHOLD")
  code=$(curl -sk -o "$DATA/init.json.tmp" -w '%{http_code}' --max-time 60 -X PUT \
    -H 'Content-Type: application/json' -d "$body" "$(local_url)/v1/sys/init" || true)
  if [ "$code" != 200 ]; then
    log "error: sys/init answered $code: $(cat "$DATA/init.json.tmp" 2>/dev/null || true); stopping"
    rm -f "$DATA/init.json.tmp"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    exit 1
  fi
  chmod 0600 "$DATA/init.json.tmp"
  mv "$DATA/init.json.tmp" "$DATA/init.json"
  log "initialised: recovery keys and root token are in $DATA/init.json (mode 0600); move them out of the volume"
fi
if [ "$code" = 200 ] || [ "$code" = 501 ] || [ "$code" = 429 ] || [ "$code" = 473 ]; then
  date -u +%Y-%m-%dT%H:%M:%SZ >"$INITIALIZED_MARK"
else
  log "warning: sys/health answered $code (503: sealed; see strongroomd's log)"
fi
wait_daemon
