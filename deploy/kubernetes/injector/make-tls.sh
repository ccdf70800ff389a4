#!/bin/sh
# Makes the injector's serving certificate and registers its CA with the apiserver:
#   1. a throwaway CA (P-256; its key never leaves this script's temporary folder) and a
#      certificate for strongroom-injector.<namespace>.svc signed by it (P-256, serverAuth);
#   2. the webhook's caBundle becomes the new CA plus the first CA it held before, so that the
#      apiserver trusts both the old and the new certificate while the pods pick up the new one;
#   3. the Secret strongroom-injector-tls (type kubernetes.io/tls) is created or replaced; the
#      injector reads the files again when the kubelet updates them (no restart).
# Run it again to rotate (before -days runs out). With --out DIR it only writes ca.crt, tls.crt
# and tls.key into DIR (for cert-manager-less setups that apply the Secret some other way).
#
# Usage: deploy/kubernetes/injector/make-tls.sh [--namespace NS] [--days N] [--out DIR]
set -eu

namespace=strongroom
days=365
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--namespace NS] [--days N] [--out DIR]" >&2; exit 2 ;;
  esac
done
case "$days" in '' | *[!0-9]*) echo "$0: --days must be a number" >&2; exit 2 ;; esac
service=strongroom-injector
secret=strongroom-injector-tls
webhook=strongroom-injector

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/ca.key" -out "$work/ca.crt" -days $((days + 30)) \
  -subj "/CN=strongroom-injector-ca $(date -u +%Y%m%dT%H%M%SZ)" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$work/tls.key" -out "$work/tls.csr" -subj "/CN=$service.$namespace.svc" 2>/dev/null
cat > "$work/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local
EXT
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days "$days" -sha256 -extfile "$work/ext.cnf" -out "$work/tls.crt" 2>/dev/null
openssl verify -CAfile "$work/ca.crt" "$work/tls.crt" >/dev/null

if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$work/ca.crt" "$work/tls.crt" "$work/tls.key" "$out/"
  echo "wrote $out/ca.crt, $out/tls.crt and $out/tls.key"
  exit 0
fi

if ! kubectl get mutatingwebhookconfiguration "$webhook" >/dev/null; then
  echo "$0: apply deploy/kubernetes/injector/ first (no MutatingWebhookConfiguration $webhook)" >&2
  exit 1
fi
# The new CA, plus the first certificate of the current bundle (the previous CA) if there is one.
old=$(kubectl get mutatingwebhookconfiguration "$webhook" \
        -o jsonpath='{.webhooks[0].clientConfig.caBundle}' | base64 -d 2>/dev/null || true)
cp "$work/ca.crt" "$work/bundle.crt"
printf '%s\n' "$old" | awk '/-----BEGIN CERTIFICATE-----/{n++} n==1{print} /-----END CERTIFICATE-----/{if(n==1)exit}' \
  >> "$work/bundle.crt"
bundle=$(base64 < "$work/bundle.crt" | tr -d '\n')
count=$(kubectl get mutatingwebhookconfiguration "$webhook" -o jsonpath='{range .webhooks[*]}x{end}')
patch="["
i=0
while [ "$i" -lt "${#count}" ]; do
  [ "$i" -gt 0 ] && patch="$patch,"
  patch="$patch{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"}"
  i=$((i + 1))
done
patch="$patch]"
kubectl patch mutatingwebhookconfiguration "$webhook" --type=json -p "$patch"
kubectl -n "$namespace" create secret tls "$secret" --cert="$work/tls.crt" --key="$work/tls.key" \
  --dry-run=client -o yaml | kubectl -n "$namespace" apply -f -
echo "caBundle set on $webhook; Secret $namespace/$secret holds the new certificate"
