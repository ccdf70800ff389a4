// Where the provider gets a pod's service-account JWT when the driver passed none for the
// audience (the driver has no `tokenRequests` for it): like the Vault CSI provider, it asks the
// Kubernetes API for one itself (TokenRequest: POST
// /api/v1/namespaces/<ns>/serviceaccounts/<name>/token, 15 minutes, the SecretProviderClass's
// audience or the API server's default ones, bound to the pod), with its own service account's
// token as the bearer. That needs RBAC `create` on `serviceaccounts/token`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/csi/params.h"

namespace strongroom::csi {

// Gives a service-account JWT for a pod. Implementations are thread-safe.
class JwtSource {
 public:
  virtual ~JwtSource() = default;
  // InvalidArgument when the pod information is incomplete; PermissionDenied when the API
  // refuses; Unavailable when it cannot be reached. Messages never hold a token.
  virtual absl::StatusOr<std::string> ServiceAccountToken(const PodInfo& pod,
                                                          std::string_view audience) = 0;
};

struct KubeApiConfig {
  std::string host;        // https://host:port[/prefix]
  std::string ca_file;     // PEM; empty: the system's CAs
  std::string token_file;  // the provider's own token, read again for every request (rotated)
  absl::Duration timeout = absl::Seconds(10);
};

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// The in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the
// mounted service account's ca.crt and token. nullopt when the environment does not name an API
// server or no token is mounted (the provider then relies on the driver's tokens alone).
std::optional<KubeApiConfig> InClusterConfig();

class TokenRequester : public JwtSource {
 public:
  explicit TokenRequester(KubeApiConfig config) : config_(std::move(config)) {}
  absl::StatusOr<std::string> ServiceAccountToken(const PodInfo& pod,
                                                  std::string_view audience) override;

  // The request body, as Vault's provider sends it (exposed for tests).
  static std::string Body(const PodInfo& pod, std::string_view audience);

 private:
  const KubeApiConfig config_;
};

// How long the tokens the provider requests live (the Vault provider's 15 minutes).
inline constexpr int64_t kTokenRequestSeconds = 15 * 60;

}  // namespace strongroom::csi
