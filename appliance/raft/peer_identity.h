// Who a certificate of the cluster CA says its holder is (PeerIdentity): its node id, in a
// subjectAltName URI "urn:strongroom:node:<node_id>" (exactly one; the CN is not looked at), and
// the hosts it may be reached at (its DNS and IP subjectAltNames). The transport
// (tls_transport.h) reads it from every peer's verified certificate; packaging/cluster-certs.sh
// issues such certificates. The CA must be the cluster's own, never a public or
// organisation-wide CA.
#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::raft {

struct PeerIdentity {
  std::string node_id;             // "" when the certificate names none (or names two)
  std::vector<std::string> hosts;  // DNS and IP subjectAltNames ("127.0.0.1", "::1", a name)
  std::string fingerprint;         // lowercase hex SHA-256 of the certificate's DER
  std::string public_key_sha256;   // lowercase hex SHA-256 of its public key (X509_pubkey_digest)
  // Whether `address` ("host:port", "[v6]:port", optionally "|..." after it) names one of `hosts`.
  bool Reaches(std::string_view address) const;
};
inline constexpr std::string_view kNodeUriPrefix = "urn:strongroom:node:";
// The identity in the certificate (the first one) of a PEM file: this node's own, checked at start.
absl::StatusOr<PeerIdentity> IdentityOfCertificateFile(const std::string& pem_file);

// For the transport (tls_transport.cc):
// The identity the verified peer certificate of `ssl` names (empty without one).
PeerIdentity IdentityOfPeer(SSL* ssl);
// "host:port" or "[v6]:port", optionally followed by "|..." (what the broker appends to a Raft
// address: node name and API address).
bool SplitHostPort(std::string_view address, std::string* host, std::string* port);
// OpenSSL's last error as text; the error queue is cleared.
std::string OpenSslError();

}  // namespace strongroom::raft
