#!/usr/bin/env bash
# Configures an initialised strongroom for the lobstack reference set-up (docs/reference-setup.md)
# through the Vault HTTP API, with curl and jq. Safe to run again: what exists and matches is
# kept, mounts/auth/audit that exist with another type or path are errors, policies, transit key
# configuration, the Kubernetes auth configuration and the roles are (re)written.
#
#   secret/      KV v2                 transit/   Transit, keys lobstack and agent-data,
#                                                 auto_rotate_period 2160h (90 days)
#   policies     lobstack-agent, lobstack-api, lobstack-provisioner (verbatim)
#   kubernetes/  Kubernetes auth: host, CA, reviewer JWT; roles lobstack-api, lobstack-agent
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
set -euo pipefail

SA_DIR=/var/run/secrets/kubernetes.io/serviceaccount
KUBERNETES_HOST=${KUBERNETES_HOST:-https://kubernetes.default.svc}
KUBERNETES_CA_CERT=${KUBERNETES_CA_CERT-$SA_DIR/ca.crt}
TOKEN_REVIEWER_JWT=${TOKEN_REVIEWER_JWT-$SA_DIR/token}
AUDIT_FILE_PATH=${AUDIT_FILE_PATH:-/var/log/strongroom/audit/audit.log}

die() {
  echo "strongroom-init: error: $*" >&2
  exit 1
}
say() { echo "strongroom-init: $*"; }

command -v curl >/dev/null || die "curl is required"
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

curl_tls=()
if [ -n "${VAULT_CACERT:-}" ]; then curl_tls+=(--cacert "$VAULT_CACERT"); fi
if [ "${VAULT_SKIP_VERIFY:-false}" = true ]; then curl_tls+=(--insecure); fi

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT

# api METHOD PATH [JSON]: the response body on stdout; any non-2xx answer ends the script with
# the server's errors (call it directly or as var=$(api ...), never nested in another command). The token goes to curl through a header file descriptor, not argv.
api() {
  local method=$1 path=$2 data=${3:-} code
  local args=(-sS -o "$body_file" -w '%{http_code}' --max-time 30 -X "$method" "${curl_tls[@]}")
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary @-); fi
  code=$(printf '%s' "$data" | curl "${args[@]}" -H @<(printf 'X-Vault-Token: %s\n' "$VAULT_TOKEN") \
    "$VAULT_ADDR/v1/$path") || die "$method $path: cannot reach $VAULT_ADDR"
  if [ "${code:0:1}" != 2 ]; then
    die "$method $path answered $code: $(jq -c '.errors // .' "$body_file" 2>/dev/null || cat "$body_file")"
  fi
  cat "$body_file"
}

# enable_once LISTING KEY PATH TYPE NAME: enables TYPE at PATH (sys/mounts/… or sys/auth/…) unless
# LISTING, the answer of GET sys/mounts or sys/auth, already has KEY; an existing KEY must be TYPE.
enable_once() {
  local listing=$1 key=$2 path=$3 type=$4 name=$5 found
  found=$(jq -r --arg k "$key" '.data[$k].type // empty' <<<"$listing")
  if [ -z "$found" ]; then
    api POST "$path" "$(jq -n --arg t "$type" '{type: $t}')" >/dev/null
    say "enabled $name at $key"
  elif [ "$found" = "$type" ]; then
    say "$key is already $name"
  else
    die "$path: $key is mounted as $found, not $type"
  fi
}

# --- secret engines -------------------------------------------------------------------------------

mounts=$(api GET sys/mounts)

secret=$(jq -c '.data["secret/"] // empty' <<<"$mounts")
if [ -z "$secret" ]; then
  api POST sys/mounts/secret '{"type":"kv","options":{"version":"2"},"description":"key/value secret storage"}' >/dev/null
  say "enabled KV v2 at secret/"
elif [ "$(jq -r '.type + ":" + (.options.version // "1")' <<<"$secret")" = "kv:2" ]; then
  say "secret/ is already KV v2"
else
  die "secret/ is mounted as $(jq -r '.type + " (options " + (.options | tostring) + ")"' <<<"$secret"), not KV v2"
fi

enable_once "$mounts" transit/ sys/mounts/transit transit Transit

# Keys are created once (aes256-gcm96) and rotated by the server every 90 days.
for key in lobstack agent-data; do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "${curl_tls[@]}" \
          -H @<(printf 'X-Vault-Token: %s\n' "$VAULT_TOKEN") "$VAULT_ADDR/v1/transit/keys/$key")" = 404 ]; then
    api POST "transit/keys/$key" '{"type":"aes256-gcm96"}' >/dev/null
    say "created transit key $key"
  fi
  api POST "transit/keys/$key/config" '{"auto_rotate_period":"2160h"}' >/dev/null
  say "transit key $key: auto_rotate_period 2160h"
done

# --- policies, verbatim from docs/reference-setup.md ----------------------------------------------

put_policy() { # name, policy text on stdin
  api PUT "sys/policies/acl/$1" "$(jq -Rs '{policy: .}')" >/dev/null
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

auths=$(api GET sys/auth)
enable_once "$auths" kubernetes/ sys/auth/kubernetes kubernetes "Kubernetes auth"

# Every field is sent, empty ones too: a config write updates only the fields it names, so an
# empty value is what clears an earlier CA or reviewer JWT. jq reads the files itself, so the JWT
# never appears in a command line.
ca_file=${KUBERNETES_CA_CERT:-/dev/null}
jwt_file=${TOKEN_REVIEWER_JWT:-/dev/null}
config=$(jq -n --arg host "$KUBERNETES_HOST" --rawfile ca "$ca_file" --rawfile jwt "$jwt_file" \
  '{kubernetes_host: $host, kubernetes_ca_cert: $ca, token_reviewer_jwt: ($jwt | gsub("\\s"; ""))}')
api POST auth/kubernetes/config "$config" >/dev/null
say "configured auth/kubernetes (host $KUBERNETES_HOST, CA ${KUBERNETES_CA_CERT:-"of the server's pod"}, reviewer JWT ${TOKEN_REVIEWER_JWT:-"of the server's pod"})"

api POST auth/kubernetes/role/lobstack-api '{
  "bound_service_account_names": "lobstack-api",
  "bound_service_account_namespaces": "lobstack-control-plane",
  "policies": "lobstack-api,lobstack-provisioner",
  "ttl": "1h",
  "max_ttl": "4h"
}' >/dev/null
say "wrote role lobstack-api"

api POST auth/kubernetes/role/lobstack-agent '{
  "bound_service_account_names": "agent-*",
  "bound_service_account_namespaces": "lobstack-agents",
  "alias_name_source": "serviceaccount_name",
  "policies": "lobstack-agent",
  "ttl": "1h",
  "max_ttl": "4h"
}' >/dev/null
say "wrote role lobstack-agent"

# --- audit ----------------------------------------------------------------------------------------

devices=$(api GET sys/audit)
device=$(jq -c '.data["file/"] // empty' <<<"$devices")
if [ -z "$device" ]; then
  api PUT sys/audit/file "$(jq -n --arg p "$AUDIT_FILE_PATH" '{type: "file", options: {file_path: $p}}')" >/dev/null
  say "enabled file audit device file/ at $AUDIT_FILE_PATH"
elif [ "$(jq -r '.type + ":" + .options.file_path' <<<"$device")" = "file:$AUDIT_FILE_PATH" ]; then
  say "audit device file/ already writes $AUDIT_FILE_PATH"
else
  die "audit device file/ exists with $(jq -c '{type, options}' <<<"$device"), not file_path $AUDIT_FILE_PATH"
fi

say "done"
