// Identity templating of ACL path names (vault-api.md section 6.3).
//
// A path such as `secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}` is rendered
// per token from the token's entity, its aliases and its groups. Rendering fails whenever a value
// is missing or empty; the ACL builder then drops that one path block, so a template can only ever
// narrow what a policy grants, never widen it.
//
// Semantics follow Vault's identitytpl in ACL mode, with two deliberate restrictions:
//  * A substituted value containing '*' or '+' (which would turn the rendered path into a glob)
//    or '/' (which would change its depth) fails, as in OpenBao by default. RenderOptions can
//    relax this for callers that need Vault's verbatim substitution.
//  * Selector syntax is checked when the policy is parsed (ValidateTemplates): a selector that can
//    never resolve in ACL mode (a typo, `time.now`, a bare map like `identity.entity.metadata`)
//    is rejected then instead of silently dropping the path at every login.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::policy {

using StringMap = std::map<std::string, std::string, std::less<>>;

struct IdentityAlias {
  std::string id;
  std::string name;
  StringMap metadata;         // set by the auth method at login
  StringMap custom_metadata;  // set by operators
};

struct IdentityGroup {
  std::string id;
  std::string name;
  StringMap metadata;
};

struct IdentityContext {
  // Empty when the token has no entity; every identity.entity.* selector then fails.
  std::string entity_id;
  std::string entity_name;
  StringMap entity_metadata;
  // Keyed by mount accessor (e.g. "auth_kubernetes_1a2b3c4d"): at most one alias per mount.
  std::map<std::string, IdentityAlias, std::less<>> aliases;
  // The groups the entity belongs to; looked up by id (identity.groups.ids.*) or by name
  // (identity.groups.names.*).
  std::vector<IdentityGroup> groups;
};

struct RenderOptions {
  bool allow_wildcards = false;  // permit '*' and '+' in substituted values
  bool allow_slashes = false;    // permit '/' in substituted values
};

// Whether `path` contains a template. Errors (InvalidArgument) for unbalanced `{{` / `}}` and for
// selectors outside the grammar of section 6.3; the message quotes the offending selector.
absl::StatusOr<bool> ValidateTemplates(std::string_view path);

// Replaces every `{{ selector }}` in `path`. A path without templates comes back unchanged.
// Errors: unbalanced braces or an invalid selector (InvalidArgument), a value that is missing,
// empty or not allowed by `options` (NotFound / InvalidArgument). Messages name the selector,
// never the identity's values.
absl::StatusOr<std::string> RenderPath(std::string_view path, const IdentityContext& identity,
                                       const RenderOptions& options = {});

}  // namespace strongroom::policy
