#!/usr/bin/env bash
# Configures an initialised strongroom for the lobstack reference set-up (docs/reference-setup.md)
# with the `strongroom` CLI (the `vault` CLI's commands) and jq. Safe to run again: what exists
# and matches is kept, mounts/auth/audit that exist with another type or path are errors,
# policies, transit key configuration, the Kubernetes auth configuration and the roles are
# (re)written. No secret is ever on a command line: the token is in the environment
# (VAULT_TOKEN), files go as KEY=@FILE and the reviewer JWT through stdin.
#
#   secret/      KV v2                 transit/   Transit, keys lobstack and agent-data,
#                                                 auto_rotate_period 2160h (90 days)
#   policies     lobstack-agent, lobstack-api, lobstack-provisioner (verbatim), lobstack-api-csi
#   kubernetes/  Kubernetes auth: host, CA, reviewer JWT; roles lobstack-api, lobstack-agent,
#                lobstack-api-csi (the CSI provider's logins for the API's pods, audience vault)
#   file/        file audit device at $AUDIT_FILE_PATH
#
# Environment:
#   VAULT_ADDR          required, e.g. https://strongroom.strongroom.svc:8200
#   VAULT_TOKEN         a root (or sudo-capable) token; or VAULT_TOKEN_FILE, a file holding one
#   VAULT_CACERT        CA bundle for VAULT_ADDR (https); VAULT_SKIP_VERIFY=true skips the check
#   KUBERNETES_HOST     default https://kubernetes.default.svc
#   KUBERNETES_CA_CERT  PEM file, default the pod's service-account ca.crt; set it empty to leave
#                       the CA unset (strongroom then uses its own pod's CA)
#   TOKEN_REVIEWER_JWT  file holding the reviewer JWT, default the pod's service-account token;
#                       set it empty to leave it unset: strongroom then reviews with its own pod's
#                       token, re-read at every login (what the Job in this folder does, since
#                       the Job pod's own token dies with the pod)
#   AUDIT_FILE_PATH     default /var/log/strongroom/audit/audit.log (a path on the server)
#   STRONGROOM_CLI      the CLI, default `strongroom` on PATH (/usr/bin/strongroom in the image)
set -euo pipefail

SA_DIR=/var/run/secrets/kubernetes.io/serviceaccount
KUBERNETES_HOST=${KUBERNETES_HOST:-https://kubernetes.default.svc}
KUBERNETES_CA_CERT=${KUBERNETES_CA_CERT-$SA_DIR/ca.crt}
TOKEN_REVIEWER_JWT=${TOKEN_REVIEWER_JWT-$SA_DIR/token}
AUDIT_FILE_PATH=${AUDIT_FILE_PATH:-/var/log/strongroom/audit/audit.log}
SR=${STRONGROOM_CLI:-strongroom}

die() {
  echo "strongroom-init: error: $*" >&2
  exit 1
}
say() { echo "strongroom-init: $*"; }

command -v "$SR" >/dev/null || die "the strongroom CLI ($SR) is required"
command -v jq >/dev/null || die "jq is required"
[ -n "${VAULT_ADDR:-}" ] || die "VAULT_ADDR is not set"
if [ -z "${VAULT_TOKEN:-}" ] && [ -n "${VAULT_TOKEN_FILE:-}" ]; then
  [ -r "$VAULT_TOKEN_FILE" ] || die "VAULT_TOKEN_FILE ($VAULT_TOKEN_FILE) is not readable"
  VAULT_TOKEN=$(head -n1 "$VAULT_TOKEN_FILE")
fi
[ -n "${VAULT_TOKEN:-}" ] || die "VAULT_TOKEN (or VAULT_TOKEN_FILE) is not set"
# Inputs are checked before anything is changed.
if [ -n "$KUBERNETES_CA_CERT" ] && [ ! -r "$KUBERNETES_CA_CERT" ]; then
  die "KUBERNETES_CA_CERT ($KUBERNETES_CA_CERT) is not readable"
fi
if [ -n "$TOKEN_REVIEWER_JWT" ] && [ ! -r "$TOKEN_REVIEWER_JWT" ]; then
  die "TOKEN_REVIEWER_JWT ($TOKEN_REVIEWER_JWT) is not readable"
fi
case "$KUBERNETES_HOST" in
  https://*) ;;
  *) die "KUBERNETES_HOST ($KUBERNETES_HOST) must be an https:// URL" ;;
esac
# The CLI takes VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT and VAULT_SKIP_VERIFY from the environment
# (with VAULT_TOKEN set, no token helper file is read). The output is parsed: no VAULT_FORMAT.
export VAULT_ADDR VAULT_TOKEN
unset VAULT_FORMAT

err_file=$(mktemp)
trap 'rm -f "$err_file"' EXIT

# run WHAT ARGS...: the CLI's output on stdout; when it fails the script ends with WHAT and the
# CLI's error on one line (call it directly or as var=$(run ...), never nested in another
# command).
run() {
  local what=$1
  shift
  if ! "$SR" "$@" 2>"$err_file"; then
    die "$what: $(tr -s '\n' ' ' <"$err_file")"
  fi
}

# enable_once LISTING KEY TYPE NAME ARGS...: runs the CLI with ARGS (an enable command) unless
# LISTING, the JSON of `secrets list` or `auth list`, already has KEY; an existing KEY must be
# TYPE.
enable_once() {
  local listing=$1 key=$2 type=$3 name=$4 found
  shift 4
  found=$(jq -r --arg k "$key" '.[$k].type // empty' <<<"$listing")
  if [ -z "$found" ]; then
    run "enabling $name at $key" "$@" >/dev/null
    say "enabled $name at $key"
  elif [ "$found" = "$type" ]; then
    say "$key is already $name"
  else
    die "$key is mounted as $found, not $type"
  fi
}

# --- secret engines -------------------------------------------------------------------------------

mounts=$(run "listing secrets engines" secrets list -format=json)

secret=$(jq -c '.["secret/"] // empty' <<<"$mounts")
if [ -z "$secret" ]; then
  run "enabling KV v2 at secret/" secrets enable -path=secret -version=2 \
    -description="key/value secret storage" kv >/dev/null
  say "enabled KV v2 at secret/"
elif [ "$(jq -r '.type + ":" + (.options.version // "1")' <<<"$secret")" = "kv:2" ]; then
  say "secret/ is already KV v2"
else
  die "secret/ is mounted as $(jq -r '.type + " (options " + (.options | tostring) + ")"' <<<"$secret"), not KV v2"
fi

enable_once "$mounts" transit/ transit Transit secrets enable transit

# Keys are created once (aes256-gcm96) and rotated by the server every 90 days.
for key in lobstack agent-data; do
  if ! "$SR" read -format=json "transit/keys/$key" >/dev/null 2>"$err_file"; then
    grep -q '^No value found at' "$err_file" ||
      die "reading transit/keys/$key: $(tr -s '\n' ' ' <"$err_file")"
    run "creating transit key $key" write "transit/keys/$key" type=aes256-gcm96 >/dev/null
    say "created transit key $key"
  fi
  run "configuring transit key $key" write "transit/keys/$key/config" \
    auto_rotate_period=2160h >/dev/null
  say "transit key $key: auto_rotate_period 2160h"
done

# --- policies, verbatim from docs/reference-setup.md ----------------------------------------------

put_policy() { # name, policy text on stdin
  run "writing policy $1" policy write "$1" - >/dev/null
  say "wrote policy $1"
}

put_policy lobstack-agent <<'EOF'
path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
EOF

put_policy lobstack-api <<'EOF'
path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
EOF

# The CSI provider mounts the API's keys as files (deploy/kubernetes/csi/examples): read only.
put_policy lobstack-api-csi <<'EOF'
path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
EOF

put_policy lobstack-provisioner <<'EOF'
path "identity/entity" {
  capabilities = ["create"]
  allowed_parameters = { "name" = [] "metadata" = [] }
}
path "identity/entity-alias" {
  capabilities = ["create"]
  allowed_parameters = { "name" = [] "canonical_id" = [] "mount_accessor" = [] }
}
path "sys/auth" { capabilities = ["read"] }
path "secret/metadata/lobstack/agent/*" { capabilities = ["list"] }
EOF

# --- Kubernetes auth ------------------------------------------------------------------------------

auths=$(run "listing auth methods" auth list -format=json)
enable_once "$auths" kubernetes/ kubernetes "Kubernetes auth" auth enable kubernetes

# Every field is sent, empty ones too: a config write updates only the fields it names, so an
# empty value is what clears an earlier CA or reviewer JWT. The CLI reads the CA itself (@file);
# the JWT, its white space removed, goes through stdin: neither is on a command line.
ca_file=${KUBERNETES_CA_CERT:-/dev/null}
jwt_file=${TOKEN_REVIEWER_JWT:-/dev/null}
tr -d '[:space:]' <"$jwt_file" |
  run "configuring auth/kubernetes" write auth/kubernetes/config \
    kubernetes_host="$KUBERNETES_HOST" kubernetes_ca_cert=@"$ca_file" token_reviewer_jwt=- \
    >/dev/null
say "configured auth/kubernetes (host $KUBERNETES_HOST, CA ${KUBERNETES_CA_CERT:-"of the server's pod"}, reviewer JWT ${TOKEN_REVIEWER_JWT:-"of the server's pod"})"

run "writing role lobstack-api" write auth/kubernetes/role/lobstack-api \
  bound_service_account_names=lobstack-api \
  bound_service_account_namespaces=lobstack-control-plane \
  policies=lobstack-api,lobstack-provisioner ttl=1h max_ttl=4h >/dev/null
say "wrote role lobstack-api"

run "writing role lobstack-agent" write auth/kubernetes/role/lobstack-agent \
  'bound_service_account_names=agent-*' \
  bound_service_account_namespaces=lobstack-agents \
  alias_name_source=serviceaccount_name \
  policies=lobstack-agent ttl=1h max_ttl=4h >/dev/null
say "wrote role lobstack-agent"

# The Secrets Store CSI provider logs in with the token the driver requests for the pod
# (CSIDriver tokenRequests, audience vault): a role of its own, bound to that audience, so that
# the API pod's own token (the API server's audience) and the CSI token are not interchangeable.
run "writing role lobstack-api-csi" write auth/kubernetes/role/lobstack-api-csi \
  bound_service_account_names=lobstack-api \
  bound_service_account_namespaces=lobstack-control-plane \
  audience=vault \
  policies=lobstack-api-csi ttl=1h max_ttl=4h >/dev/null
say "wrote role lobstack-api-csi"

# --- audit ----------------------------------------------------------------------------------------

devices=$(run "listing audit devices" audit list -format=json)
# As `vault audit list`: a sentence, not JSON, when there is no device.
if [ "$devices" = "No audit devices are enabled." ]; then devices='{}'; fi
device=$(jq -c '.["file/"] // empty' <<<"$devices")
if [ -z "$device" ]; then
  run "enabling the file audit device" audit enable -path=file file \
    file_path="$AUDIT_FILE_PATH" >/dev/null
  say "enabled file audit device file/ at $AUDIT_FILE_PATH"
elif [ "$(jq -r '.type + ":" + .options.file_path' <<<"$device")" = "file:$AUDIT_FILE_PATH" ]; then
  say "audit device file/ already writes $AUDIT_FILE_PATH"
else
  die "audit device file/ exists with $(jq -c '{type, options}' <<<"$device"), not file_path $AUDIT_FILE_PATH"
fi

say "done"
