#include "appliance/tls/certificates.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/strings.h"

namespace strongroom::tls {
namespace {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION, X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BIGNUM, BN_free>>;
using OctetsPtr =
    std::unique_ptr<ASN1_OCTET_STRING, Free<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

absl::Status OpensslError(std::string_view what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  char buf[256] = {};
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  return absl::InternalError(absl::StrCat(Av(what), e != 0 ? ": " : "", buf));
}

bool IsIp(const std::string& host) {
  OctetsPtr ip(a2i_IPADDRESS(host.c_str()));
  ERR_clear_error();
  return ip != nullptr;
}

bool IsDnsName(std::string_view host) {
  if (host.starts_with("*.")) host.remove_prefix(2);
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.back() == '.') return false;
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return host.find("..") == std::string_view::npos;
}

// "IP:127.0.0.1,DNS:localhost" for X509V3_EXT_conf_nid (the hosts were checked by ParseHosts,
// so none holds a ',' or ':' that could smuggle in another entry).
std::string SubjectAltNames(const std::vector<std::string>& hosts) {
  std::vector<std::string> parts;
  for (const auto& h : hosts) parts.push_back(absl::StrCat(IsIp(h) ? "IP:" : "DNS:", h));
  return absl::StrJoin(parts, ",");
}

absl::Status CheckHosts(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return absl::InvalidArgumentError("no host names for the certificate");
  for (const auto& h : hosts) {
    if (!IsIp(h) && !IsDnsName(h)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", h, "\" is neither an IP address nor a DNS name"));
    }
  }
  return absl::OkStatus();
}

absl::Status SetCommonName(X509_NAME* name, const std::string& cn) {
  // X.520 caps the common name at 64 characters; longer names live in the SAN only.
  const std::string value = cn.size() <= 64 ? cn : "strongroom";
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return OpensslError("cannot set the subject name");
  }
  return absl::OkStatus();
}

absl::StatusOr<ExtPtr> MakeExtension(X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return OpensslError(absl::StrCat("cannot make extension ", OBJ_nid2sn(nid)));
  return ext;
}

absl::StatusOr<std::string> BioString(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  if (mem == nullptr) return absl::InternalError("no PEM output");
  return std::string(mem->data, mem->length);
}

}  // namespace

absl::StatusOr<std::string> LeafPublicKeyDer(std::string_view chain_pem) {
  BioPtr bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the certificate file holds no PEM certificate");
  }
  const EVP_PKEY* key = X509_get0_pubkey(cert.get());
  unsigned char* der = nullptr;
  const int len = key != nullptr ? i2d_PUBKEY(key, &der) : -1;
  if (len <= 0) return OpensslError("cannot encode the certificate's public key");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::vector<std::string>> ParseHosts(std::string_view comma_separated) {
  std::vector<std::string> hosts;
  for (absl::string_view part : absl::StrSplit(Av(comma_separated), ',', absl::SkipEmpty())) {
    std::string h(part);
    while (!h.empty() && h.back() == ' ') h.pop_back();
    while (!h.empty() && h.front() == ' ') h.erase(0, 1);
    if (h.empty()) continue;
    hosts.push_back(std::move(h));
  }
  if (hosts.size() > 64) return absl::InvalidArgumentError("more than 64 host names");
  if (absl::Status s = CheckHosts(hosts); !s.ok()) return s;
  return hosts;
}

absl::StatusOr<std::string> SelfSignedCertificatePem(EVP_PKEY* key,
                                                     const std::vector<std::string>& hosts,
                                                     int days) {
  if (absl::Status s = CheckHosts(hosts); !s.ok()) return s;
  if (days < 1 || days > 3650) return absl::InvalidArgumentError("validity must be 1..3650 days");
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return OpensslError("X509_new");

  // Serial: 128 random bits, positive (top bit clear), as CAs must (RFC 5280 4.1.2.2).
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpensslError("RAND_bytes");
  serial[0] &= 0x7f;
  serial[0] |= 0x01;  // and never zero-length after encoding
  BnPtr bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpensslError("cannot set the serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) == nullptr) {
    return OpensslError("cannot set the validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (absl::Status s = SetCommonName(name, hosts[0]); !s.ok()) return s;
  if (X509_set_issuer_name(cert.get(), name) != 1) return OpensslError("cannot set the issuer");
  if (X509_set_pubkey(cert.get(), key) != 1) return OpensslError("cannot set the public key");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_subject_alt_name, SubjectAltNames(hosts)},
  };
  for (const auto& [nid, value] : extensions) {
    auto ext = MakeExtension(&ctx, nid, value);
    if (!ext.ok()) return ext.status();
    if (X509_add_ext(cert.get(), ext->get(), -1) != 1) return OpensslError("X509_add_ext");
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) {
    return OpensslError("signing the certificate failed");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    return OpensslError("cannot write the certificate");
  }
  return BioString(out.get());
}

absl::StatusOr<std::string> CertificateRequestPem(EVP_PKEY* key,
                                                  const std::vector<std::string>& hosts,
                                                  std::string_view uri) {
  if (absl::Status s = CheckHosts(hosts); !s.ok()) return s;
  for (char c : uri) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != ':' && c != '.' && c != '_' &&
        c != '-') {
      return absl::InvalidArgumentError(
          "the URI of a certificate request may hold only "
          "letters, digits and \":._-\"");
    }
  }
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return OpensslError("X509_REQ_new");
  if (absl::Status s = SetCommonName(X509_REQ_get_subject_name(req.get()), hosts[0]); !s.ok()) {
    return s;
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1) return OpensslError("cannot set the public key");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  auto san =
      MakeExtension(&ctx, NID_subject_alt_name,
                    uri.empty() ? SubjectAltNames(hosts)
                                : absl::StrCat("URI:", Av(uri), ",", SubjectAltNames(hosts)));
  if (!san.ok()) return san.status();
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  if (exts == nullptr || sk_X509_EXTENSION_push(exts, san->get()) <= 0) {
    sk_X509_EXTENSION_free(exts);
    return OpensslError("cannot build the extension request");
  }
  const int added = X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_free(exts);  // the extension itself stays owned by `san`
  if (added != 1) return OpensslError("cannot add the extension request");
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return OpensslError("signing the request failed");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) {
    return OpensslError("cannot write the request");
  }
  return BioString(out.get());
}

}  // namespace strongroom::tls
