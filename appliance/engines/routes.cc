#include "appliance/engines/routes.h"

namespace strongroom::engines {
namespace {

using core::kRouteDelete;
using core::kRouteList;
using core::kRoutePatch;
using core::kRouteRead;
using core::kRouteWrite;
using core::Route;
using core::RouteField;

constexpr uint8_t kRWD = kRouteRead | kRouteWrite | kRouteDelete;

// Fields of the token_* parameters every auth method's role carries (token_params.h).
#define SR_TOKEN_FIELDS                                                                           \
  {"token_policies", "array", "Comma-separated list of policies."},                               \
      {"token_ttl", "string", "The initial ttl of the token to generate."},                       \
      {"token_max_ttl", "string", "The maximum lifetime of the generated token."},                \
      {"token_num_uses", "integer", "The maximum number of times a token may be used."},          \
      {"token_period", "string", "If set, tokens created via this role are periodic."},           \
      {"token_no_default_policy", "boolean", "Do not add the default policy to tokens."},         \
      {"token_type", "string", "The type of token to generate (service, batch or default-*)."}, { \
    "token_bound_cidrs", "array", "CIDR blocks the token may be used from (refused)."             \
  }

// ---- auth/token/ (token_backend.cc) ----------------------------------------------------------
constexpr RouteField kTokenCreateFields[] = {
    {"policies", "array", "List of policies for the token."},
    {"ttl", "string", "Time to live for this token."},
    {"explicit_max_ttl", "string", "Explicit Max TTL for this token."},
    {"period", "string", "Renew period of the token."},
    {"num_uses", "integer", "Max number of uses for this token."},
    {"display_name", "string", "Name to associate with this token."},
    {"meta", "object", "Arbitrary key=value metadata to associate with the token."},
    {"no_parent", "boolean", "Create the token with no parent."},
    {"no_default_policy", "boolean", "Do not include default policy for this token."},
    {"renewable", "boolean", "Allow the token to be renewed past its initial TTL."},
    {"type", "string", "Token type (service or batch)."},
};
constexpr RouteField kTokenFields[] = {{"token", "string", "Token to act on."}};
constexpr RouteField kAccessorFields[] = {{"accessor", "string", "Accessor of the token."}};
constexpr RouteField kRenewFields[] = {
    {"token", "string", "Token to renew."},
    {"increment", "string", "The desired increment in seconds to the token expiration."},
};
constexpr Route kTokenRoutes[] = {
    {"create", kRouteWrite, "Create a new token.", kTokenCreateFields},
    {"create-orphan", kRouteWrite, "Create a new orphan token.", kTokenCreateFields},
    {"create/{role_name}", kRouteWrite, "Create a new token from a role.", kTokenCreateFields},
    {"roles", kRouteList, "List the token roles."},
    {"roles/{role_name}", kRWD, "Read, write or delete a token role."},
    {"lookup-self", kRouteRead | kRouteWrite, "Look up the caller's token."},
    {"lookup", kRouteRead | kRouteWrite, "Look up a token.", kTokenFields},
    {"lookup-accessor", kRouteWrite, "Look up a token by its accessor.", kAccessorFields},
    {"renew-self", kRouteWrite, "Renew the caller's token.", kRenewFields},
    {"renew", kRouteWrite, "Renew a token.", kRenewFields},
    {"renew-accessor", kRouteWrite, "Renew a token by its accessor.", kAccessorFields},
    {"revoke-self", kRouteWrite, "Revoke the caller's token and its children."},
    {"revoke", kRouteWrite, "Revoke a token and its children.", kTokenFields},
    {"revoke-orphan", kRouteWrite, "Revoke a token, leaving its children orphans.", kTokenFields},
    {"revoke-accessor", kRouteWrite, "Revoke a token by its accessor.", kAccessorFields},
    {"accessors", kRouteList, "List the accessors of every token."},
};

// ---- identity/ (identity_backend.cc) ---------------------------------------------------------
constexpr RouteField kEntityFields[] = {
    {"name", "string", "Name of the entity."},
    {"metadata", "object", "Metadata to be associated with the entity."},
    {"policies", "array", "Policies to be tied to the entity."},
    {"disabled", "boolean", "If set true, tokens tied to this identity will not be usable."},
};
constexpr RouteField kAliasFields[] = {
    {"name", "string", "Name of the alias."},
    {"canonical_id", "string", "Entity ID to which this alias belongs."},
    {"mount_accessor", "string", "Mount accessor to which this alias belongs."},
    {"custom_metadata", "object", "User provided key-value pairs."},
};
constexpr Route kIdentityRoutes[] = {
    {"entity", kRouteWrite, "Create a new entity.", kEntityFields},
    {"entity/id", kRouteList, "List the entities by ID."},
    {"entity/name", kRouteList, "List the entities by name."},
    {"entity/id/{id}", kRWD, "Read, update or delete an entity by ID.", kEntityFields},
    {"entity/name/{name}", kRWD, "Read, create or update, or delete an entity by name.",
     kEntityFields},
    {"entity/batch-delete", kRouteWrite, "Delete entities by ID."},
    {"entity-alias", kRouteWrite, "Create a new alias.", kAliasFields},
    {"entity-alias/id", kRouteList, "List the aliases by ID."},
    {"entity-alias/id/{id}", kRWD, "Read, update or delete an alias by ID.", kAliasFields},
    {"lookup/entity", kRouteWrite, "Look up an entity."},
};

// ---- kv (kv_backend.cc) ----------------------------------------------------------------------
constexpr Route kKvV1Routes[] = {
    {"", kRouteRead | kRouteList, "List the secrets at the mount's root."},
    {"{path*}", kRouteRead | kRouteList | kRouteWrite | kRouteDelete,
     "Read, list, write or delete a secret."},
};
constexpr RouteField kKvConfigFields[] = {
    {"max_versions", "integer", "The number of versions to keep for each key."},
    {"cas_required", "boolean", "If true, the backend requires the cas parameter."},
    {"delete_version_after", "string", "How long after writing a version it is deleted."},
};
constexpr RouteField kKvDataFields[] = {
    {"data", "object", "The contents of the data map will be stored and returned on read."},
    {"options", "object", "Options for writing a KV entry (cas)."},
};
constexpr RouteField kKvVersionsFields[] = {
    {"versions", "array", "The versions to act on.", true},
};
constexpr Route kKvV2Routes[] = {
    {"config", kRouteRead | kRouteWrite, "Configure the engine.", kKvConfigFields},
    {"data/{path*}", kRouteRead | kRouteWrite | kRoutePatch | kRouteDelete,
     "Write, patch, read, and delete data in the key-value store.", kKvDataFields},
    {"metadata", kRouteList, "List the keys at the mount's root."},
    {"metadata/{path*}", kRouteRead | kRouteList | kRouteWrite | kRoutePatch | kRouteDelete,
     "Configure, list, read or delete a key's metadata and versions."},
    {"subkeys/{path*}", kRouteRead, "Read the structure of a secret without its values."},
    {"delete/{path*}", kRouteWrite, "Mark versions as deleted.", kKvVersionsFields},
    {"undelete/{path*}", kRouteWrite, "Undelete versions.", kKvVersionsFields},
    {"destroy/{path*}", kRouteWrite, "Permanently remove versions.", kKvVersionsFields},
};

// ---- transit (transit_backend.cc) ------------------------------------------------------------
constexpr RouteField kTransitKeyFields[] = {
    {"type", "string", "The type of key to create."},
    {"exportable", "boolean", "Refused: keys never leave the PKCS#11 token."},
    {"auto_rotate_period", "string", "Rotate the key automatically after this long."},
};
constexpr RouteField kTransitBatchFields[] = {
    {"plaintext", "string", "Base64 encoded plaintext value."},
    {"ciphertext", "string", "The ciphertext to operate on."},
    {"input", "string", "Base64 encoded input data."},
    {"context", "string", "Base64 encoded context for key derivation."},
    {"key_version", "integer", "The version of the key to use."},
    {"batch_input", "array", "Items to process in one request."},
};
constexpr Route kTransitRoutes[] = {
    {"keys", kRouteList, "List the named keys."},
    {"keys/{name}", kRWD, "Create, read or delete a named key.", kTransitKeyFields},
    {"keys/{name}/config", kRouteWrite, "Configure a named key."},
    {"keys/{name}/rotate", kRouteWrite, "Rotate a named key."},
    {"keys/{name}/trim", kRouteWrite, "Trim key versions of a named key."},
    {"export/{path*}", kRouteRead | kRouteWrite, "Refused: keys never leave the token."},
    {"backup/{path*}", kRouteRead | kRouteWrite, "Refused: keys never leave the token."},
    {"restore", kRouteWrite, "Refused: keys never leave the token."},
    {"restore/{name}", kRouteWrite, "Refused: keys never leave the token."},
    {"encrypt/{name}", kRouteWrite, "Encrypt a plaintext value or a batch.", kTransitBatchFields},
    {"decrypt/{name}", kRouteWrite, "Decrypt a ciphertext value or a batch.", kTransitBatchFields},
    {"rewrap/{name}", kRouteWrite, "Rewrap ciphertext with the latest key version.",
     kTransitBatchFields},
    {"hmac/{name}", kRouteWrite, "Generate an HMAC.", kTransitBatchFields},
    {"hmac/{name}/{urlalgorithm}", kRouteWrite, "Generate an HMAC.", kTransitBatchFields},
    {"verify/{name}", kRouteWrite, "Verify a signature or HMAC.", kTransitBatchFields},
    {"verify/{name}/{urlalgorithm}", kRouteWrite, "Verify a signature or HMAC.",
     kTransitBatchFields},
    {"sign/{name}", kRouteWrite, "Sign input data.", kTransitBatchFields},
    {"sign/{name}/{urlalgorithm}", kRouteWrite, "Sign input data.", kTransitBatchFields},
    {"datakey/{plaintext}/{name}", kRouteWrite, "Generate a data key."},
    {"random", kRouteWrite, "Generate random bytes."},
    {"random/{urlbytes}", kRouteWrite, "Generate random bytes."},
    {"random/{source}/{urlbytes}", kRouteWrite, "Generate random bytes."},
    {"hash", kRouteWrite, "Generate a hash sum for input data."},
    {"hash/{urlalgorithm}", kRouteWrite, "Generate a hash sum for input data."},
    {"cache-config", kRouteRead | kRouteWrite, "Read or set the size of the key cache."},
};

// ---- cubbyhole/ (cubbyhole_backend.cc) -------------------------------------------------------
constexpr Route kCubbyholeRoutes[] = {
    {"", kRouteList, "List the caller's cubbyhole."},
    {"{path*}", kRouteRead | kRouteList | kRouteWrite | kRouteDelete,
     "Read, list, write or delete a value in the caller's cubbyhole."},
};

// ---- auth/approle/ (approle_backend.cc) ------------------------------------------------------
constexpr RouteField kAppRoleFields[] = {
    {"bind_secret_id", "boolean", "Require a secret ID at login."},
    {"secret_id_bound_cidrs", "array", "CIDR blocks secret IDs may be used from."},
    {"secret_id_num_uses", "integer", "Number of times a secret ID can be used."},
    {"secret_id_ttl", "string", "Duration after which a secret ID expires."},
    SR_TOKEN_FIELDS,
};
constexpr RouteField kAppRoleLoginFields[] = {
    {"role_id", "string", "Unique identifier of the role.", true},
    {"secret_id", "string", "SecretID belonging to the role."},
};
constexpr Route kAppRoleRoutes[] = {
    {"login", kRouteWrite, "Log in with a role ID and secret ID.", kAppRoleLoginFields},
    {"role", kRouteList, "List the roles."},
    {"role/{role_name}", kRWD, "Register, read or delete a role.", kAppRoleFields},
    {"role/{role_name}/role-id", kRouteRead | kRouteWrite, "Read or set a role's role ID."},
    {"role/{role_name}/secret-id", kRouteList | kRouteWrite,
     "Generate a secret ID, or list the accessors of a role's secret IDs."},
    {"role/{role_name}/secret-id/lookup", kRouteWrite, "Read a secret ID's properties."},
    {"role/{role_name}/secret-id/destroy", kRouteWrite, "Destroy a secret ID."},
    {"role/{role_name}/secret-id-accessor/lookup", kRouteWrite,
     "Read a secret ID's properties by its accessor."},
    {"role/{role_name}/secret-id-accessor/destroy", kRouteWrite,
     "Destroy a secret ID by its accessor."},
};

// ---- auth/kubernetes/ (kubernetes_backend.cc) ------------------------------------------------
constexpr RouteField kKubeLoginFields[] = {
    {"role", "string", "Name of the role against which the login is being attempted.", true},
    {"jwt", "string", "A signed JWT for authenticating a service account.", true},
};
constexpr RouteField kKubeRoleFields[] = {
    {"bound_service_account_names", "array", "Service account names able to access this role."},
    {"bound_service_account_namespaces", "array", "Namespaces allowed to access this role."},
    {"audience", "string", "Audience claim to verify in the JWT."},
    {"alias_name_source", "string", "Source to use when deriving the alias name."},
    SR_TOKEN_FIELDS,
};
constexpr Route kKubernetesRoutes[] = {
    {"login", kRouteWrite, "Authenticate a service account JWT.", kKubeLoginFields},
    {"config", kRWD, "Configure the connection to the Kubernetes API server."},
    {"role", kRouteList, "List the roles."},
    {"role/{name}", kRWD, "Register, read or delete a role.", kKubeRoleFields},
};

// ---- auth/userpass/ (userpass_backend.cc) ----------------------------------------------------
constexpr RouteField kUserFields[] = {
    {"password", "string", "Password for this user."},
    SR_TOKEN_FIELDS,
};
constexpr RouteField kPasswordFields[] = {{"password", "string", "Password for this user.", true}};
constexpr RouteField kPoliciesFields[] = {
    {"token_policies", "array", "Comma-separated list of policies."},
    {"policies", "array", "Use token_policies instead."},
};
constexpr Route kUserpassRoutes[] = {
    {"login/{username}", kRouteWrite, "Log in with a username and password.", kPasswordFields},
    {"users", kRouteList, "List the users."},
    {"users/{username}", kRWD, "Manage users allowed to authenticate.", kUserFields},
    {"users/{username}/password", kRouteWrite, "Reset a user's password.", kPasswordFields},
    {"users/{username}/policies", kRouteWrite, "Update the policies of a user.", kPoliciesFields},
};

#undef SR_TOKEN_FIELDS

}  // namespace

std::span<const core::Route> TokenRoutes() { return kTokenRoutes; }
std::span<const core::Route> IdentityRoutes() { return kIdentityRoutes; }
std::span<const core::Route> KvV1Routes() { return kKvV1Routes; }
std::span<const core::Route> KvV2Routes() { return kKvV2Routes; }
std::span<const core::Route> TransitRoutes() { return kTransitRoutes; }
std::span<const core::Route> CubbyholeRoutes() { return kCubbyholeRoutes; }
std::span<const core::Route> AppRoleRoutes() { return kAppRoleRoutes; }
std::span<const core::Route> KubernetesRoutes() { return kKubernetesRoutes; }
std::span<const core::Route> UserpassRoutes() { return kUserpassRoutes; }

}  // namespace strongroom::engines
