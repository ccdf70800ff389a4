// The vault.hashicorp.com/* pod annotations read the way the Vault Agent injector (vault-k8s)
// reads them, validated value by value: InjectionSpec is everything the mutation needs, with the
// injector's defaults filled in. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::injector {

inline constexpr std::string_view kAnnotationPrefix = "vault.hashicorp.com/";
inline constexpr std::string_view kStatusAnnotation = "vault.hashicorp.com/agent-inject-status";

// What the injector's flags set; the annotations override them pod by pod. The defaults are the
// Vault injector's (agent-inject/agent/agent.go and container_sidecar.go).
struct InjectorDefaults {
  std::string vault_address;  // -vault-address (required)
  std::string agent_image;    // -agent-image (required)
  std::string auth_path = "auth/kubernetes";
  std::string default_template = "map";  // "map" or "json"
  int64_t run_as_user = 100;
  int64_t run_as_group = 1000;
  std::string cpu_request = "250m";
  std::string cpu_limit = "500m";
  std::string mem_request = "64Mi";
  std::string mem_limit = "128Mi";
  std::string ephemeral_request;  // empty: not set
  std::string ephemeral_limit;
  std::string static_secret_render_interval;  // empty: the agent's default
  bool exit_on_retry_failure = true;
};

// One rendered file: the agent's `template` stanza.
struct SecretTemplate {
  std::string raw_name;     // as written after the annotation prefix
  std::string name;         // file name (lower-cased unless preserve-secret-case)
  std::string vault_path;   // agent-inject-secret-NAME (may be empty when a template is given)
  std::string contents;     // agent-inject-template-NAME, or the default template for the path
  std::string mount_path;   // secret-volume-path-NAME, or the pod's secret volume path
  std::string destination;  // mount_path + "/" + (agent-inject-file-NAME or name)
  std::string perms;        // agent-inject-perms-NAME, empty when not set
  std::string command;      // agent-inject-command-NAME, empty when not set
  bool error_on_missing_key = false;
};

struct Resources {
  // Kubernetes quantities; empty means "not set" (the annotation was given as "").
  std::string cpu_request, mem_request, ephemeral_request;
  std::string cpu_limit, mem_limit, ephemeral_limit;
};

struct InjectionSpec {
  bool update = false;  // agent-inject-status: update (re-inject over an earlier injection)
  bool pre_populate = true;
  bool pre_populate_only = false;
  bool init_first = false;
  bool inject_token = false;
  std::string image;
  std::string vault_address;
  std::string auth_path;
  std::string role;
  // auth-config-KEY (KEY with '-' turned into '_'), sorted by key.
  std::map<std::string, std::string> auth_config;
  std::string ca_cert;
  std::string tls_server_name;
  bool tls_skip_verify = false;
  std::string tls_secret;    // Secret mounted read-only at /vault/tls
  std::string extra_secret;  // Secret mounted read-only at /vault/custom
  std::string secret_volume_path = "/vault/secrets";
  int64_t run_as_user = 100;
  int64_t run_as_group = 1000;
  bool run_as_same_user = false;  // run_as_user comes from the first container
  Resources resources;
  std::string static_secret_render_interval;
  bool exit_on_retry_failure = true;
  std::string log_level = "info";
  std::string log_format = "standard";
  std::optional<std::vector<std::string>> inject_containers;  // agent-inject-containers
  std::string service_account_token_volume_name;
  std::vector<SecretTemplate> secrets;  // sorted by name
  // Unknown or ignored vault.hashicorp.com/* annotations, by key only (never values).
  std::vector<std::string> warnings;
};

struct AnnotationDecision {
  bool inject = false;
  std::string reason;  // why not, when inject is false ("agent-inject absent", ...)
  InjectionSpec spec;  // filled when inject is true
};

// Reads the pod's annotations. InvalidArgument, naming the first bad annotation and what is wrong
// with it (never its value), refuses the admission. Annotations are checked in a fixed order.
absl::StatusOr<AnnotationDecision> ReadAnnotations(
    const std::map<std::string, std::string>& annotations, const InjectorDefaults& defaults);

// Value checks shared with the command's flags. Each returns an empty string when `value` is
// good, or what is wrong with it.
std::string CheckBool(std::string_view value, bool* out);             // Go's strconv.ParseBool
std::string CheckQuantity(std::string_view value, long double* out);  // Kubernetes quantity
std::string CheckGoDuration(std::string_view value);    // Go's time.ParseDuration, not negative
std::string CheckVaultAddress(std::string_view value);  // http(s)://host[:port][/path]
std::string CheckImage(std::string_view value);         // a container image reference
std::string CheckAuthPath(std::string_view value);      // a Vault auth mount path
std::string CheckUid(std::string_view value, bool allow_zero, int64_t* out);

}  // namespace strongroom::injector
