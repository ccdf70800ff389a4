// strongroomd's key commands (key_commands.h).
#include "appliance/broker/key_commands.h"

#include <unistd.h>

#include <cctype>
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
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {
namespace {

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write \"", path, "\""));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read \"", path, "\""));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

int Fail(const absl::Status& s) {
  std::cerr << "strongroomd: " << s.message() << "\n";
  return 1;
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
  if (flags.tls_generate_key) {
    auto pub = audit::PublicKey::FromDer(key->public_key_der());
    if (!pub.ok()) return Fail(absl::InternalError(pub.message()));
    std::cerr << "strongroomd: TLS key \"" << label << "\" (ECDSA P-256) generated in token \""
              << (*token)->label() << "\"\n";
    std::cout << pub->ToPem();
  }
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
  if (!der.ok()) {
    std::cerr << "strongroomd: " << der.status().message() << "\n";
    return 1;
  }
  auto key = audit::PublicKey::FromDer(*der);
  if (!key.ok()) {
    std::cerr << "strongroomd: " << key.message() << "\n";
    return 1;
  }
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
                                        : TokenTlsKey::Find(*token, label);
  if (!key.ok()) {
    if (absl::IsNotFound(key.status())) {
      return Fail(absl::NotFoundError(
          absl::StrCat("no cluster key labelled \"", label, "\" in token \"", (*token)->label(),
                       "\" (create it with: strongroomd -config=FILE -cluster-generate-key)")));
    }
    return Fail(key.status());
  }
  if (command.cluster_generate_key) {
    auto pub = audit::PublicKey::FromDer(key->public_key_der());
    if (!pub.ok()) return Fail(absl::InternalError(pub.message()));
    std::cerr << "strongroomd: cluster key \"" << label << "\" (ECDSA P-256) generated in token \""
              << (*token)->label() << "\"\n";
    std::cout << pub->ToPem();
  }
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

absl::StatusOr<std::shared_ptr<EVP_PKEY>> LoadClusterKey(core::Pkcs11Seal& seal,
                                                         const StorageConfig& storage) {
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
  auto key = TokenTlsKey::Find(*token, storage.cluster_key_label);
  if (!key.ok()) {
    if (absl::IsNotFound(key.status())) {
      return absl::NotFoundError(
          absl::StrCat("no cluster key labelled \"", storage.cluster_key_label, "\" in token \"",
                       (*token)->label(),
                       "\" (create it with: strongroomd -config=FILE -cluster-generate-key)"));
    }
    return key.status();
  }
  if (key->public_key_der() != *spki) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cluster_cert_file ", storage.cluster_cert_file,
        " is not a certificate for the cluster key \"", storage.cluster_key_label,
        "\" in the token (request one with strongroomd -config=FILE -cluster-csr=OUT and have the "
        "cluster CA sign it: packaging/cluster-certs.sh sign)"));
  }
  ASSIGN_OR_RETURN(tls::PkeyPtr pkey, key->Pkey());
  return std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free);
}

}  // namespace strongroom::broker
