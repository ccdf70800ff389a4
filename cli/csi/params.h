// The parameters of a Secrets Store CSI mount request, read the way the Vault CSI provider reads
// them (hashicorp/vault-csi-provider, internal/config): MountRequest.attributes is a JSON object
// of strings holding the SecretProviderClass's spec.parameters and the pod information the
// driver adds; its `objects` parameter is a YAML list of objects. Pure functions, no I/O.
//
// Every input is bounded before it is parsed (sizes, counts, nesting) and every error is an
// InvalidArgument naming the parameter (and the object, by its objectName or position) and the
// cause, never a value: the attributes carry service-account tokens and `secretArgs` may carry
// plaintext for Transit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"

namespace strongroom::csi {

namespace json = boost::json;

// Bounds on what a mount request may hold.
inline constexpr size_t kMaxAttributesBytes = 1 << 20;     // the whole attributes JSON
inline constexpr size_t kMaxObjectsYamlBytes = 256 << 10;  // the `objects` parameter
inline constexpr size_t kMaxObjects = 256;                 // entries of `objects`
inline constexpr size_t kMaxFieldBytes = 4096;             // objectName, secretPath, ... each
inline constexpr size_t kMaxSecretArgsBytes = 64 << 10;    // one object's secretArgs as JSON
inline constexpr int kMaxYamlDepth = 32;                   // nesting inside `objects`
inline constexpr size_t kMaxYamlNodes = 20000;             // nodes visited in `objects`

// The audience whose driver-supplied token is used when `audience` is not set (as Vault's).
inline constexpr std::string_view kDefaultAudience = "vault";

// One entry of `objects`.
struct ObjectSpec {
  std::string object_name;  // the file's path in the volume and the object's id
  std::string secret_path;  // the Vault path, optionally with "?query" and a /v1/ prefix
  std::string secret_key;   // a key of the secret's data; empty: the whole response as JSON
  std::string method;       // GET (default), PUT or POST
  std::optional<json::object> secret_args;  // the request body (PUT/POST)
  uint32_t file_permission = 0;             // 0: the mount's permission
  std::string encoding;                     // "", utf-8, base64 or hex (with secret_key only)
  // The object's configuration as canonical JSON (keys sorted): the first input of its version.
  std::string canonical;
};

struct TlsParams {
  std::string ca_cert;              // vaultCACertPath
  std::string ca_directory;         // vaultCADirectory
  std::string server_name;          // vaultTLSServerName
  std::string client_cert;          // vaultTLSClientCertPath
  std::string client_key;           // vaultTLSClientKeyPath
  std::optional<bool> skip_verify;  // vaultSkipTLSVerify when given
};

// What the driver says about the pod the volume is for.
struct PodInfo {
  std::string name, uid, namespace_, service_account_name;
  // The token the driver requested for the audience (csi.storage.k8s.io/serviceAccount.tokens);
  // empty when the driver passed none for it.
  std::string service_account_token;
};

struct MountParams {
  std::string role_name;        // roleName (required)
  std::string vault_address;    // vaultAddress; empty: the provider's default
  std::string vault_namespace;  // vaultNamespace
  std::string auth_mount_path;  // vaultKubernetesMountPath or vaultAuthMountPath; empty: default
  std::string audience;         // audience
  TlsParams tls;
  PodInfo pod;
  std::vector<ObjectSpec> objects;
  std::string target_path;
  uint32_t permission = 0;  // MountRequest.permission
};

// The whole request: attributes, target path and permission ("420"). Checks what the Vault
// provider checks (a target path, roleName, at least one object, unique objectNames, not both
// mount path parameters) and more: every object names a relative path without "..", a
// secretPath, a method of GET, PUT or POST, a known encoding, a mode within 0777; pod names are
// Kubernetes names.
absl::StatusOr<MountParams> ParseMountRequest(std::string_view attributes,
                                              std::string_view target_path,
                                              std::string_view permission);

// The `objects` YAML alone (a sequence of mappings; unknown keys are ignored as Vault does).
absl::StatusOr<std::vector<ObjectSpec>> ParseObjects(std::string_view yaml);

// The object-name rules of the driver's File.path: not empty, relative, no "." or ".." element,
// no empty element, no control character, at most kMaxFieldBytes.
absl::Status CheckObjectName(std::string_view name);

}  // namespace strongroom::csi
