// strongroomd's key commands (key_commands.h).
#include "appliance/broker/key_commands.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "appliance/broker/tls_key.h"
#include "appliance/tls/certificates.h"
#include "audit/keys.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/strings.h"
#include "hsm/token.h"

#if defined(__SANITIZE_ADDRESS__)
#define SR_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SR_ASAN_BUILD 1
#endif
#endif

namespace strongroom::broker {
namespace {

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write \"", path, "\""));
  return absl::OkStatus();
}

// The host of an address "https://host:port", "host:port" or "[v6]:port" ("" when none).
std::string HostOf(std::string_view address) {
  absl::string_view addr = absl::StripPrefix(absl::StripPrefix(Av(address), "https://"), "http://");
  if (!addr.empty() && addr.front() == '[') {
    const size_t close = addr.find(']');
    return close == absl::string_view::npos ? "" : std::string(addr.substr(1, close - 1));
  }
  return std::string(addr.substr(0, addr.rfind(':')));
}

// RFC 3986 percent-encoding of everything but unreserved characters (a PKCS#11 URI's values).
std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

// The token's key `label` through pkcs11-provider, in a library context of its own configured
// from memory (a memfd: nothing written to disk). The module is the seal's; the provider never
// finalizes it (quirk no-deinit: the broker's own sessions stay).
absl::StatusOr<std::shared_ptr<const raft::TokenKey>> ProviderKey(
    const core::Pkcs11SealConfig& seal, const std::string& token_label, const std::string& label,
    const std::string& cert_file) {
#if defined(SR_ASAN_BUILD)
  // pkcs11-provider dlopens the module with RTLD_DEEPBIND, which the AddressSanitizer runtime
  // refuses (it aborts the process): sanitizer builds use strongroom's own signer.
  (void)seal;
  (void)token_label;
  (void)label;
  (void)cert_file;
  return absl::UnavailableError(
      "a sanitizer build: pkcs11-provider's RTLD_DEEPBIND cannot run under AddressSanitizer");
#endif
  // pkcs11-provider takes its module from this variable before its configuration: one
  // inherited from the environment would choose another module than the seal's.
  if (std::getenv("PKCS11_PROVIDER_MODULE") != nullptr) {
    return absl::FailedPreconditionError(
        "PKCS11_PROVIDER_MODULE is set in the environment; not letting it choose the module");
  }
  for (char c : seal.token.lib) {
    if (c == '\n' || c == '\r' || c == '$' || c == '\\' || c == '#' || c == '"' || c == '\'') {
      return absl::InvalidArgumentError(
          "the seal's lib path has characters OpenSSL's "
          "configuration would read otherwise");
    }
  }
  const std::string conf = absl::StrCat(
      "openssl_conf = init\n[init]\nproviders = prov\n[prov]\ndefault = def\npkcs11 = p11\n"
      "[def]\nactivate = 1\n[p11]\npkcs11-module-path = ",
      seal.token.lib, "\npkcs11-module-quirks = no-deinit\nactivate = 1\n");
  const int fd = memfd_create("strongroom-openssl-conf", MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", std::strerror(errno)));
  const bool written = ::write(fd, conf.data(), conf.size()) == static_cast<ssize_t>(conf.size());
  std::shared_ptr<OSSL_LIB_CTX> libctx(OSSL_LIB_CTX_new(), OSSL_LIB_CTX_free);
  const std::string path = absl::StrCat("/proc/self/fd/", fd);
  const bool loaded =
      written && libctx && OSSL_LIB_CTX_load_config(libctx.get(), path.c_str()) == 1;
  ::close(fd);
  if (!loaded || OSSL_PROVIDER_available(libctx.get(), "pkcs11") != 1) {
    ERR_clear_error();
    return absl::UnavailableError("pkcs11-provider is not installed or does not load");
  }
  // The library context, and pkcs11-provider in it, once loaded, stay for the life of the process:
  // the provider is told never to finalize the module (no-deinit), and unloading it then leaves its
  // allocations behind.
  static auto* kept = new std::vector<std::shared_ptr<OSSL_LIB_CTX>>;
  kept->push_back(libctx);
  // No PIN here: the broker's own session logged in to the token (LoadClusterKey opened it),
  // and a PKCS#11 login is the application's, for every session it opens.
  const std::string uri = absl::StrCat("pkcs11:token=", PercentEncode(token_label),
                                       ";object=", PercentEncode(label), ";type=private");
  OSSL_STORE_CTX* store = OSSL_STORE_open_ex(uri.c_str(), libctx.get(), nullptr, nullptr, nullptr,
                                             nullptr, nullptr, nullptr);
  if (store == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError("pkcs11-provider cannot open the token");
  }
  EVP_PKEY* found = nullptr;
  int keys = 0;
  while (OSSL_STORE_eof(store) == 0) {
    OSSL_STORE_INFO* info = OSSL_STORE_load(store);
    if (info == nullptr) break;
    if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) {
      ++keys;
      if (found == nullptr) found = OSSL_STORE_INFO_get1_PKEY(info);
    }
    OSSL_STORE_INFO_free(info);
  }
  OSSL_STORE_close(store);
  ERR_clear_error();
  if (found == nullptr || keys != 1) {
    EVP_PKEY_free(found);
    return absl::NotFoundError(
        absl::StrCat("pkcs11-provider found ", keys, " private keys labelled \"", label, "\""));
  }
  std::shared_ptr<EVP_PKEY> pkey(found, EVP_PKEY_free);
  // The provider's key must be usable as the certificate's key (it pairs the private half with
  // its public one by CKA_ID: a key without one is found but cannot be used): tried here, so
  // that such a key falls back to strongroom's own signer instead of failing the transport.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> trial(
      SSL_CTX_new_ex(libctx.get(), nullptr, TLS_method()), &SSL_CTX_free);
  const bool usable = trial &&
                      SSL_CTX_use_certificate_chain_file(trial.get(), cert_file.c_str()) == 1 &&
                      SSL_CTX_use_PrivateKey(trial.get(), pkey.get()) == 1 &&
                      SSL_CTX_check_private_key(trial.get()) == 1;
  ERR_clear_error();
  if (!usable) {
    return absl::FailedPreconditionError(
        "pkcs11-provider cannot use the key as the certificate's (no CKA_ID on it?)");
  }
  auto out = std::make_shared<raft::TokenKey>();
  out->libctx = std::move(libctx);
  out->pkey = std::move(pkey);
  return out;
}

int Fail(const absl::Status& s) {
  std::cerr << "strongroomd: " << s.message() << "\n";
  return 1;
}

// The cluster key `label` in `token` (TokenTlsKey::Find); NotFound names the command that
// makes it.
absl::StatusOr<TokenTlsKey> FindClusterKey(hsm::Token* token, const std::string& label) {
  auto key = TokenTlsKey::Find(token, label);
  if (absl::IsNotFound(key.status())) {
    return absl::NotFoundError(
        absl::StrCat("no cluster key labelled \"", label, "\" in token \"", token->label(),
                     "\" (create it with: strongroomd -config=FILE -cluster-generate-key)"));
  }
  return key;
}

// After -tls-generate-key or -cluster-generate-key: what was made on stderr, the public key
// (PEM) on stdout.
int PrintGenerated(const TokenTlsKey& key, std::string_view what, hsm::Token* token) {
  auto pub = audit::PublicKey::FromDer(key.public_key_der());
  if (!pub.ok()) return Fail(absl::InternalError(pub.message()));
  std::cerr << "strongroomd: " << what << " \"" << key.label()
            << "\" (ECDSA P-256) generated in token \"" << token->label() << "\"\n";
  std::cout << pub->ToPem();
  return 0;
}

}  // namespace

std::string NodeId(const std::string& configured) {
  std::string id = configured;
  if (id.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) id = host;
  }
  for (char& c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '-';
  }
  if (id.size() > 128) id.resize(128);
  return id.empty() ? "node" : id;
}

core::Pkcs11SealConfig SealConfigFrom(const ServerConfig& config) {
  core::Pkcs11SealConfig seal_config;
  seal_config.token.lib = config.seal.lib;
  seal_config.token.token_label = config.seal.token_label;
  if (config.seal.slot) seal_config.token.slot = *config.seal.slot;
  seal_config.token.pin_spec = config.seal.pin;
  seal_config.key_label = config.seal.key_label;
  seal_config.audit_key_label = config.seal.audit_key_label;
  seal_config.cluster = config.storage.type == "raft";
  return seal_config;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read \"", path, "\""));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunTlsCommands(const ServerConfig& config, const KeyCommand& flags) {
  const std::string& label = config.listener.tls_key_label;
  if (label.empty()) {
    return Fail(absl::FailedPreconditionError(
        "the listener has no tls_key_label; add tls_key_label = \"strongroom-tls\" to the "
        "listener \"tcp\" block (in place of tls_key_file)"));
  }
  std::vector<std::string> hosts;
  if (!flags.tls_self_signed_cert.empty() || !flags.tls_csr.empty()) {
    auto parsed = tls::ParseHosts(flags.tls_cert_hosts);
    if (!parsed.ok()) return Fail(parsed.status());
    hosts = *std::move(parsed);
  }
  core::Pkcs11Seal seal(SealConfigFrom(config));
  auto token = seal.OpenToken();
  if (!token.ok()) return Fail(token.status());
  absl::StatusOr<TokenTlsKey> key = flags.tls_generate_key ? TokenTlsKey::Generate(*token, label)
                                                           : TokenTlsKey::Find(*token, label);
  if (!key.ok()) return Fail(key.status());
  if (flags.tls_generate_key && PrintGenerated(*key, "TLS key", *token) != 0) return 1;
  auto pkey = key->Pkey();
  if (!pkey.ok()) return Fail(pkey.status());
  if (!flags.tls_self_signed_cert.empty()) {
    auto pem = tls::SelfSignedCertificatePem(pkey->get(), hosts, 365);
    if (!pem.ok()) return Fail(pem.status());
    if (absl::Status s = WriteTextFile(flags.tls_self_signed_cert, *pem); !s.ok()) return Fail(s);
    std::cerr << "strongroomd: self-signed certificate for " << flags.tls_cert_hosts
              << " (valid 365 days) written to " << flags.tls_self_signed_cert << "\n";
  }
  if (!flags.tls_csr.empty()) {
    auto pem = tls::CertificateRequestPem(pkey->get(), hosts);
    if (!pem.ok()) return Fail(pem.status());
    if (absl::Status s = WriteTextFile(flags.tls_csr, *pem); !s.ok()) return Fail(s);
    std::cerr << "strongroomd: certificate signing request for " << flags.tls_cert_hosts
              << " written to " << flags.tls_csr << "\n";
  }
  return 0;
}

int PrintAuditPublicKey(const ServerConfig& config) {
  core::Pkcs11Seal seal(SealConfigFrom(config));
  absl::Status s = seal.Open();
  absl::StatusOr<std::string> der = s.ok() ? seal.AuditPublicKeyDer(/*create=*/false) : s;
  if (!der.ok()) return Fail(der.status());
  auto key = audit::PublicKey::FromDer(*der);
  if (!key.ok()) return Fail(absl::InternalError(key.message()));
  std::cout << key->ToPem();
  return 0;
}

int RunClusterKeyCommands(const ServerConfig& config, const KeyCommand& command) {
  const StorageConfig& storage = config.storage;
  const std::string& label = storage.cluster_key_label;
  if (storage.type != "raft" || label.empty()) {
    return Fail(absl::FailedPreconditionError(
        "the -cluster-* commands need storage \"raft\" with cluster_key_label (for example "
        "cluster_key_label = \"strongroom-cluster\", in place of cluster_key_file)"));
  }
  std::vector<std::string> hosts;
  if (!command.cluster_csr.empty()) {
    const std::string host = HostOf(config.cluster_addr);
    if (!host.empty()) hosts.push_back(host);
    if (!command.cluster_cert_hosts.empty()) {
      auto more = tls::ParseHosts(command.cluster_cert_hosts);
      if (!more.ok()) return Fail(more.status());
      for (std::string& h : *more) {
        if (h != host) hosts.push_back(std::move(h));
      }
    }
    if (hosts.empty()) {
      return Fail(absl::FailedPreconditionError(
          "no host for the cluster certificate: set cluster_addr (or give -cluster-cert-hosts)"));
    }
  }
  core::Pkcs11Seal seal(SealConfigFrom(config));
  auto token = seal.OpenToken();
  if (!token.ok()) return Fail(token.status());
  absl::StatusOr<TokenTlsKey> key = command.cluster_generate_key
                                        ? TokenTlsKey::Generate(*token, label)
                                        : FindClusterKey(*token, label);
  if (!key.ok()) return Fail(key.status());
  if (command.cluster_generate_key && PrintGenerated(*key, "cluster key", *token) != 0) return 1;
  if (!command.cluster_csr.empty()) {
    auto pkey = key->Pkey();
    if (!pkey.ok()) return Fail(pkey.status());
    const std::string node = NodeId(storage.node_id);
    auto pem =
        tls::CertificateRequestPem(pkey->get(), hosts, absl::StrCat("urn:strongroom:node:", node));
    if (!pem.ok()) return Fail(pem.status());
    if (absl::Status s = WriteTextFile(command.cluster_csr, *pem); !s.ok()) return Fail(s);
    std::cerr << "strongroomd: certificate signing request for node \"" << node << "\" at "
              << absl::StrJoin(hosts, ",") << " written to " << command.cluster_csr
              << " (sign it with packaging/cluster-certs.sh sign)\n";
  }
  return 0;
}

absl::StatusOr<std::shared_ptr<const raft::TokenKey>> LoadClusterKey(
    core::Pkcs11Seal& seal, const core::Pkcs11SealConfig& seal_config, const StorageConfig& storage,
    std::string* how) {
  ASSIGN_OR_RETURN(std::string cert, ReadTextFile(storage.cluster_cert_file));
  auto spki = tls::LeafPublicKeyDer(cert);
  if (!spki.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(storage.cluster_cert_file, ": ", spki.status().message()));
  }
  auto token = seal.OpenToken();
  if (!token.ok()) {
    return absl::Status(token.status().code(),
                        absl::StrCat("cannot open the PKCS#11 token for the cluster key: ",
                                     token.status().message()));
  }
  ASSIGN_OR_RETURN(TokenTlsKey key, FindClusterKey(*token, storage.cluster_key_label));
  if (key.public_key_der() != *spki) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cluster_cert_file ", storage.cluster_cert_file,
        " is not a certificate for the cluster key \"", storage.cluster_key_label,
        "\" in the token (request one with strongroomd -config=FILE -cluster-csr=OUT and have the "
        "cluster CA sign it: packaging/cluster-certs.sh sign)"));
  }
  auto provided = ProviderKey(seal_config, (*token)->label(), storage.cluster_key_label,
                              storage.cluster_cert_file);
  if (provided.ok()) {
    *how = "through pkcs11-provider";
    return *std::move(provided);
  }
  LogWarn(
      "raft: pkcs11-provider cannot use the cluster key (%s); strongroom's own token signer "
      "is used instead",
      provided.status().message());
  ASSIGN_OR_RETURN(tls::PkeyPtr pkey, key.Pkey());
  auto out = std::make_shared<raft::TokenKey>();
  out->pkey = std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free);
  *how = "through strongroom's token signer";
  return out;
}

}  // namespace strongroom::broker
