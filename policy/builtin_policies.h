// The built-in policies (vault-api.md section 7.3).
#pragma once

#include <string_view>

namespace strongroom::policy {

inline constexpr std::string_view kRootPolicyName = "root";
inline constexpr std::string_view kDefaultPolicyName = "default";
inline constexpr std::string_view kResponseWrappingPolicyName = "response-wrapping";

// Attached to every token unless created with no_default_policy. Operators may edit it (the
// policy store seeds it with this text) but not delete it. Same paths as Vault/OpenBao's default
// policy, minus Vault Enterprise's sys/control-group/request.
inline constexpr std::string_view kDefaultPolicyText = R"hcl(
# Allow tokens to look up their own properties.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves.
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name.
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}

# Allow a token to read its resultant ACL (used by the UI).
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Allow a token to renew and look up leases it holds.
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole.
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token.
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a response-wrapping token.
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token.
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# Allow general-purpose hashing.
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}

# Allow a token to make requests to the authorize endpoint of OIDC providers.
path "identity/oidc/provider/+/authorize" {
  capabilities = ["read", "update"]
}
)hcl";

// Internal: the only policy of a response-wrapping token. It can read the wrapped response out of
// its own cubbyhole and unwrap it, nothing else.
inline constexpr std::string_view kResponseWrappingPolicyText = R"hcl(
path "cubbyhole/response" {
  capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
)hcl";

}  // namespace strongroom::policy
