// strongroomd's commands for the keys that live in the token, run instead of the server (no
// unseal needed): the listener's TLS key (-tls-*), the cluster port's key (-cluster-*) and the
// audit public key (-audit-public-key). Also the pieces of configuration they share with the
// server: the seal's settings, the node id, the cluster key loaded for the transport.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "appliance/broker/config.h"
#include "appliance/core/seal.h"
#include "appliance/raft/tls_transport.h"

namespace strongroom::broker {

// The node's name in audit checkpoint origins and in the cluster: storage node_id, else the
// host name, reduced to the characters an origin allows.
std::string NodeId(const std::string& configured);

core::Pkcs11SealConfig SealConfigFrom(const ServerConfig& config);

// The whole file at `path`; NotFound naming it when it cannot be read.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

struct KeyCommand {
  // The listener's key (tls_key_label).
  bool tls_generate_key = false;
  std::string tls_self_signed_cert;  // output path
  std::string tls_csr;               // output path
  std::string tls_cert_hosts = "127.0.0.1,localhost";
  // The cluster port's key (storage "raft" cluster_key_label).
  bool cluster_generate_key = false;
  std::string cluster_csr;         // output path
  std::string cluster_cert_hosts;  // more hosts than cluster_addr's
  bool Tls() const { return tls_generate_key || !tls_self_signed_cert.empty() || !tls_csr.empty(); }
  bool Cluster() const { return cluster_generate_key || !cluster_csr.empty(); }
};

// -tls-generate-key, -tls-self-signed-cert, -tls-csr: the listener's key in the token and the
// certificate or request for it, signed by the token. Exit status.
int RunTlsCommands(const ServerConfig& config, const KeyCommand& command);

// -cluster-generate-key, -cluster-csr: the cluster port's key in the token (ECDSA P-256, sign
// only, never extractable) and a certificate request for it naming this node's id
// (urn:strongroom:node:<node_id>) and the host of cluster_addr (and -cluster-cert-hosts), for
// the cluster CA to sign (packaging/cluster-certs.sh sign). Exit status.
int RunClusterKeyCommands(const ServerConfig& config, const KeyCommand& command);

// -audit-public-key: the PEM of the audit key, read from the token. Exit status.
int PrintAuditPublicKey(const ServerConfig& config);

// The cluster port's key in `seal`'s token (cluster_key_label), checked (sensitive, not
// extractable, sign only) and checked to be the key of cluster_cert_file. Used through
// pkcs11-provider (OpenSSL's provider interface: a library context of its own with the default
// provider and pkcs11-provider, which opens the token's module itself) when that provider is
// installed, else through strongroom's own signer (tls/remote_ec_key.h); `how` says which.
// Either way the token makes every signature. Valid as long as the seal.
absl::StatusOr<std::shared_ptr<const raft::TokenKey>> LoadClusterKey(
    core::Pkcs11Seal& seal, const core::Pkcs11SealConfig& seal_config, const StorageConfig& storage,
    std::string* how);

}  // namespace strongroom::broker
