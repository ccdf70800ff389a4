// Who a cluster certificate names (peer_identity.h): OpenSSL's X509 and the C library's address
// parsing only, so that the one Boost.Asio translation unit of the module stays the transport.
#include "appliance/raft/peer_identity.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::raft {
namespace {

// An IP address in its one text form ("127.0.0.1", "::1"), from its 4 or 16 bytes.
std::string IpText(const unsigned char* bytes, int len) {
  char text[INET6_ADDRSTRLEN] = {};
  const int family = len == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(family, bytes, text, sizeof text) == nullptr) return "";
  return text;
}

// The node id and hosts a certificate names. Two different node ids name none.
PeerIdentity IdentityOf(X509* cert) {
  PeerIdentity id;
  if (cert == nullptr) return id;
  // No digest (an OpenSSL failure): left empty, which nothing pinned matches.
  auto hex = [](const unsigned char* md, unsigned int len) {
    return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
  };
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) id.fingerprint = hex(md, md_len);
  if (X509_pubkey_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    id.public_key_sha256 = hex(md, md_len);
  }
  ERR_clear_error();
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return id;
  bool conflicting = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_URI || n->type == GEN_DNS) {
      const ASN1_IA5STRING* v = n->type == GEN_URI ? n->d.uniformResourceIdentifier : n->d.dNSName;
      std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                       static_cast<size_t>(ASN1_STRING_length(v)));
      if (n->type == GEN_DNS) {
        id.hosts.push_back(absl::AsciiStrToLower(Av(text)));
      } else if (absl::StartsWith(Av(text), Av(kNodeUriPrefix))) {
        std::string node = text.substr(kNodeUriPrefix.size());
        if (node.empty() || (!id.node_id.empty() && id.node_id != node)) conflicting = true;
        id.node_id = std::move(node);
      }
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* v = n->d.iPAddress;
      const int len = ASN1_STRING_length(v);
      if (len == 4 || len == 16) {
        std::string ip = IpText(ASN1_STRING_get0_data(v), len);
        if (!ip.empty()) id.hosts.push_back(std::move(ip));
      }
    }
  }
  GENERAL_NAMES_free(names);
  if (conflicting) id.node_id.clear();
  return id;
}

}  // namespace

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

bool SplitHostPort(std::string_view address, std::string* host, std::string* port) {
  address = address.substr(0, address.find('|'));
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) return false;
  std::string_view h = address.substr(0, colon);
  if (h.starts_with('[') && h.ends_with(']')) h = h.substr(1, h.size() - 2);
  if (h.empty()) return false;
  uint32_t p = 0;
  if (!absl::SimpleAtoi(Av(address.substr(colon + 1)), &p) || p == 0 || p > 65535) return false;
  *host = std::string(h);
  *port = std::to_string(p);
  return true;
}

PeerIdentity IdentityOfPeer(SSL* ssl) { return IdentityOf(SSL_get0_peer_certificate(ssl)); }

bool PeerIdentity::Reaches(std::string_view address) const {
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) return false;
  // An IP address in the form IdentityOf writes it; a name in lower case.
  unsigned char bytes[sizeof(in6_addr)];
  std::string want;
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) {
    want = IpText(bytes, 4);
  } else if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    want = IpText(bytes, 16);
  } else {
    want = absl::AsciiStrToLower(host);
  }
  for (const std::string& h : hosts) {
    if (h == want) return true;
  }
  return false;
}

absl::StatusOr<PeerIdentity> IdentityOfCertificateFile(const std::string& pem_file) {
  FILE* f = std::fopen(pem_file.c_str(), "r");
  if (f == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the cluster certificate \"", pem_file, "\""));
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the cluster certificate \"", pem_file, "\": ", OpenSslError()));
  PeerIdentity id = IdentityOf(cert);
  X509_free(cert);
  return id;
}

}  // namespace strongroom::raft
