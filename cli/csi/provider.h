// What one Mount does, without gRPC: log in to Vault (strongroom) with the pod's service
// account (Kubernetes auth, through the token cache), read every object of the
// SecretProviderClass, and return the files with their object versions. The Vault CSI
// provider's behaviour (hashicorp/vault-csi-provider, internal/provider and internal/client):
//
//   * the JWT: the driver's token for `audience` (default "vault") when it passed one, else one
//     the provider requests from the Kubernetes API for the pod (JwtSource), when it can;
//   * login: PUT auth/<vaultAuthMountPath or the default>/login {role, jwt};
//   * each object: `method` (GET) on secretPath (a /v1/ prefix and a "?query" allowed) with
//     secretArgs as the JSON body; a 403 once per mount logs in again and retries (the cached
//     token may have been revoked); the same request is sent once per mount however many objects
//     use it;
//   * content: without secretKey, the whole response as JSON (Vault's api.Secret); with it, the
//     key of data.data (KV v2) or data (KV v1, other engines): a string as is, anything else as
//     JSON, then decoded per `encoding`;
//   * one failing object fails the mount; the error names the object, the request and the cause,
//     never a value or a token;
//   * versions: base64url(HMAC-SHA256(key, canonical object configuration || content)), so a
//     version changes exactly when what the object yields (or its configuration) changes, and
//     says nothing about the content to whoever reads the SecretProviderClassPodStatus.
//
// Thread-safe: mounts run concurrently, each with its own HTTP client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/csi/kube_token.h"
#include "cli/csi/params.h"
#include "cli/csi/token_cache.h"
#include "client/http.h"

namespace strongroom::csi {

// The provider's defaults (flags and environment); the SecretProviderClass overrides them.
struct ProviderConfig {
  std::string vault_address = "https://127.0.0.1:8200";
  std::string auth_mount = "kubernetes";
  std::string vault_namespace;
  http::TlsOptions tls;  // ca_file, ca_path, server_name, client cert and key, skip_verify
  absl::Duration timeout = absl::Seconds(30);         // each request to Vault
  uint64_t max_response_bytes = 4 << 20;              // one Vault answer
  uint64_t max_files_bytes = (4 << 20) - (64 << 10);  // all files of a mount (gRPC's 4 MiB)
  // All the Vault answers one mount holds at once, and the time one mount may take: a class
  // with many slow or large objects cannot hold the node's calls or memory (review findings).
  uint64_t max_answers_bytes = 24 << 20;
  absl::Duration mount_deadline = absl::Minutes(2);
};

struct MountedFile {
  std::string path;
  uint32_t mode = 0;
  std::string contents;
};

struct MountedObject {
  std::string id;  // the objectName
  std::string version;
};

struct MountResult {
  std::vector<MountedFile> files;
  std::vector<MountedObject> versions;
  bool logged_in = false;  // a login happened (not only the cached token)
};

class Provider {
 public:
  // `hmac_key`: at least 32 bytes. `cache` and `jwt_source` (may be null: no Kubernetes API)
  // outlive the provider.
  Provider(ProviderConfig config, std::string hmac_key, TokenCache* cache, JwtSource* jwt_source)
      : config_(std::move(config)),
        hmac_key_(std::move(hmac_key)),
        cache_(cache),
        jwt_source_(jwt_source) {}

  // Errors keep their kind: InvalidArgument (a bad parameter), PermissionDenied (login or read
  // refused), NotFound (no secret at a path), Unavailable (Vault or the Kubernetes API not
  // reachable), FailedPrecondition (content that cannot be delivered: a missing key, bad
  // encoding, too large).
  // `cancelled` (may be null) is asked between requests: the driver gave up on the call.
  absl::StatusOr<MountResult> Mount(const MountParams& params,
                                    const std::function<bool()>& cancelled = nullptr);

  // The version of `content` for an object (exposed for tests).
  // `scope`: the Vault address, Vault namespace and pod namespace of the mount.
  std::string Version(const ObjectSpec& object, std::string_view content,
                      std::string_view scope = "") const;

 private:
  const ProviderConfig config_;
  const std::string hmac_key_;
  TokenCache* const cache_;
  JwtSource* const jwt_source_;
};

// secretPath split as the Vault provider splits it: the /v1/ prefix (with or without slashes)
// removed, the query after "?" apart. Exposed for tests.
struct VaultRequestPath {
  std::string path;
  std::string query;
};
absl::StatusOr<VaultRequestPath> SplitSecretPath(std::string_view secret_path);

}  // namespace strongroom::csi
