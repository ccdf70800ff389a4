#!/bin/sh
# Issues the certificates of a strongroom cluster's port (mutual TLS between the nodes) with the
# openssl command line tool.
#
#   cluster-certs.sh ca DIR
#       makes the cluster CA: DIR/ca.pem (give it to every node: cluster_ca_file) and DIR/ca.key
#       (keep it offline; it makes members). Refuses to overwrite an existing CA.
#   cluster-certs.sh node DIR NODE_ID HOST...
#       makes a P-256 key and a certificate for node NODE_ID (its storage "raft" node_id):
#       DIR/NODE_ID.pem and DIR/NODE_ID.key (cluster_cert_file, cluster_key_file). Give each node
#       its own pair and nothing else.
#   cluster-certs.sh sign DIR NODE_ID CSR HOST...
#       signs a certificate request made elsewhere (its key never leaves where it was made):
#       DIR/NODE_ID.pem. The request's extensions are not copied: the certificate names what is
#       given here (the subject's CN is kept and never looked at).
#
# A node's certificate names its node id in a subjectAltName URI urn:strongroom:node:NODE_ID, and
# every HOST (the host of its cluster_addr, and any other name or address peers reach it at) as a
# DNS or IP subjectAltName. Peers refuse a node that claims another node id, another node's Raft
# id, or an address at a host its certificate does not name. DAYS (environment, default 825) sets
# how long certificates are valid.
set -eu

usage() {
  echo "usage: $0 ca DIR | node DIR NODE_ID HOST... | sign DIR NODE_ID CSR HOST..." >&2
  exit 2
}

days="${DAYS:-825}"

check_node_id() {
  case "$1" in
    "" | *[!A-Za-z0-9._-]*) echo "$0: node id must be letters, digits, '.', '_' or '-'" >&2; exit 2 ;;
  esac
  if [ "${#1}" -gt 64 ]; then
    echo "$0: node id must be at most 64 characters" >&2
    exit 2
  fi
}

# The subjectAltName extension for node $1 at hosts $2...
san_of() {
  node="$1"
  shift
  san="URI:urn:strongroom:node:$node"
  for host in "$@"; do
    case "$host" in
      *[!0-9.]*)
        case "$host" in
          *:*) san="$san,IP:$host" ;;
          *) san="$san,DNS:$host" ;;
        esac
        ;;
      *) san="$san,IP:$host" ;;
    esac
  done
  printf '%s' "$san"
}

# Signs request $2 for node $3 (hosts after it) with the CA in $1 into $1/$3.pem.
sign() {
  dir="$1"
  csr="$2"
  node="$3"
  shift 3
  if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
    echo "$0: no CA in $dir (run: $0 ca $dir)" >&2
    exit 1
  fi
  ext="$(mktemp)"
  trap 'rm -f "$ext"' EXIT
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = serverAuth, clientAuth"
    echo "subjectAltName = $(san_of "$node" "$@")"
  } > "$ext"
  openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$dir/$node.pem" 2>/dev/null
  rm -f "$ext"
  trap - EXIT
  echo "$dir/$node.pem: node $node ($(san_of "$node" "$@"))"
}

[ $# -ge 2 ] || usage
command="$1"
dir="$2"
shift 2
case "$command" in
  ca)
    [ $# -eq 0 ] || usage
    if [ -e "$dir/ca.key" ] || [ -e "$dir/ca.pem" ]; then
      echo "$0: $dir already holds a CA" >&2
      exit 1
    fi
    mkdir -p "$dir"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
      -out "$dir/ca.key")
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" \
      -subj "/CN=strongroom cluster CA" \
      -addext "basicConstraints = critical, CA:TRUE, pathlen:0" \
      -addext "keyUsage = critical, keyCertSign, cRLSign" -out "$dir/ca.pem"
    echo "$dir/ca.pem: the cluster CA (its key: $dir/ca.key)"
    ;;
  node)
    [ $# -ge 2 ] || usage
    node="$1"
    shift
    check_node_id "$node"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
      -out "$dir/$node.key")
    csr="$(mktemp)"
    openssl req -new -key "$dir/$node.key" -subj "/CN=$node" -out "$csr"
    sign "$dir" "$csr" "$node" "$@"
    rm -f "$csr"
    ;;
  sign)
    [ $# -ge 3 ] || usage
    node="$1"
    csr="$2"
    shift 2
    check_node_id "$node"
    openssl req -in "$csr" -noout -verify 2>/dev/null || {
      echo "$0: $csr is not a valid certificate request" >&2
      exit 1
    }
    sign "$dir" "$csr" "$node" "$@"
    ;;
  *) usage ;;
esac
