// The mutation itself, a pure function: an admission.k8s.io/v1 AdmissionReview for a pod in, the
// AdmissionReview answer out (allowed with a JSONPatch that adds what the Vault Agent injector
// adds, allowed untouched, or refused with status 400 and a message naming the bad annotation).
// No I/O: the HTTPS server (webhook_server.h) calls it once per request.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cli/injector/annotations.h"

namespace strongroom::injector {

// Names the Vault injector gives what it adds (agent-inject/agent/container_volume.go).
inline constexpr std::string_view kInitContainerName = "vault-agent-init";
inline constexpr std::string_view kSidecarName = "vault-agent";
inline constexpr std::string_view kSecretsVolume = "vault-secrets";
inline constexpr std::string_view kHomeInitVolume = "home-init";
inline constexpr std::string_view kHomeSidecarVolume = "home-sidecar";
inline constexpr std::string_view kTlsVolume = "vault-tls-secrets";
inline constexpr std::string_view kExtraSecretVolume = "extra-secrets";
inline constexpr std::string_view kHomePath = "/home/vault";
inline constexpr std::string_view kTlsPath = "/vault/tls";
inline constexpr std::string_view kExtraSecretPath = "/vault/custom";
inline constexpr std::string_view kTokenFile = "/home/vault/.vault-token";
inline constexpr std::string_view kPidFile = "/home/vault/.pid";
inline constexpr std::string_view kConfigEnv = "VAULT_CONFIG";
inline constexpr std::string_view kAgentBinary = "/usr/bin/strongroom";

struct MutationResult {
  std::string response;  // the AdmissionReview answer (JSON)
  std::string log_line;  // namespace/pod and what was done; never annotation values
  bool injected = false;
  bool refused = false;
};

// InvalidArgument when `review` is not an AdmissionReview v1 with a request uid (the server
// answers HTTP 400: there is nothing to answer an AdmissionReview to). Every other problem is an
// answer: a pod whose annotations are bad is refused (allowed=false, code 400).
absl::StatusOr<MutationResult> Mutate(std::string_view review, const InjectorDefaults& defaults);

// The agent's JSON configuration (Vault Agent's JSON config shape) for the init container
// (exit_after_auth true) or the sidecar (false). `token_path` is the service-account token file.
std::string AgentConfigJson(const InjectionSpec& spec, std::string_view token_path, bool init);

}  // namespace strongroom::injector
