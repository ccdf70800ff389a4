// X.509 helpers for the listener's certificate: the public key of a PEM chain's leaf, and the
// self-signed certificate or certificate signing request an operator makes for a key that lives
// in the token (the EVP_PKEY is a remote key, remote_ec_key.h, so the signature is the token's).
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::tls {

// DER SubjectPublicKeyInfo of the first certificate of a PEM chain.
absl::StatusOr<std::string> LeafPublicKeyDer(std::string_view chain_pem);

// Parses "127.0.0.1,localhost,::1": IP addresses (v4 or v6) and DNS names (letters, digits,
// '-', '.', a leading "*." wildcard), at least one, at most 64. InvalidArgument names the bad one.
absl::StatusOr<std::vector<std::string>> ParseHosts(std::string_view comma_separated);

// A self-signed X.509 v3 server certificate for `key`, signed with ECDSA-SHA256 by `key` itself:
// subject and issuer CN = hosts[0], subjectAltName = every host (IP or DNS), valid from five
// minutes ago for `days` days, random 128-bit serial, basicConstraints CA:FALSE, keyUsage
// digitalSignature, extendedKeyUsage serverAuth. PEM.
absl::StatusOr<std::string> SelfSignedCertificatePem(EVP_PKEY* key,
                                                     const std::vector<std::string>& hosts,
                                                     int days);

// A PKCS#10 request (CN = hosts[0], subjectAltName extension request: `uri` first when given,
// then every host), signed by `key`. PEM. `uri` is letters, digits and ":._-" only.
absl::StatusOr<std::string> CertificateRequestPem(EVP_PKEY* key,
                                                  const std::vector<std::string>& hosts,
                                                  std::string_view uri = "");

}  // namespace strongroom::tls
