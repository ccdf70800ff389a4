// ACL evaluation over a token's policies (vault-api.md section 7.2, Vault's vault/policy/acl.go).
//
// Building: rules with the same path string are merged across all policies first (capabilities
// OR-ed, deny wins and clears everything else, the smaller non-zero wrapping TTLs, parameter maps
// unioned with an empty list winning). Templated paths are rendered against the token's identity;
// a path that does not render is dropped (a template only ever narrows).
//
// Lookup for a request path picks ONE merged rule and uses only it:
//   1. the exact rule for the path (list: also the path without its trailing '/');
//   2. else the best of the longest matching prefix rule ("foo/*") and every matching '+' rule,
//      by Vault's priority order (see LowerPriority in acl.cc);
//   3. list with a trailing '/': step 2 again without the '/';
//   4. nothing matched: denied.
// Capabilities are never combined across different path strings: with `secret/*` [read] and
// `secret/foo` [update], `secret/foo` is update-only.
//
// Request data is checked against allowed/denied/required parameters for read, create, update and
// patch, as in Vault, with one difference: values compare structurally (numbers by value), where
// Vault's Go types make a number in a policy never equal a number from a JSON request body.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/param_value.h"
#include "policy/policy.h"
#include "policy/template.h"

namespace strongroom::policy {

// Logical request operations (vault-api.md 1.1). Renew, revoke and rollback need "update".
enum class Operation {
  kRead,
  kList,
  kCreate,
  kUpdate,
  kPatch,
  kDelete,
  kRenew,
  kRevoke,
  kRollback
};

struct AclRequest {
  // Views into the caller's request; they must outlive the Allowed() call.
  std::string_view path;  // the logical path, leading '/' optional
  Operation operation = Operation::kRead;
  // Every member has an initializer so that designated initializers may leave any out under
  // -Wextra (GCC's -Wmissing-field-initializers).
  std::span<const ParamEntry> data = {};           // the request body's top-level keys and values
  std::optional<int64_t> wrap_ttl = std::nullopt;  // seconds, when the response is to be wrapped
  bool root_protected = false;  // the path is a sudo path (the backend's root paths)
};

struct AclResult {
  // The final answer: the operation is granted, parameters and wrapping pass, and sudo is present
  // if the path is root-protected.
  bool allowed = false;
  bool is_root = false;     // the token holds the root policy
  bool root_privs = false;  // root, or the chosen rule has "sudo" (Vault's RootPrivs)
  bool sudo_ok = true;      // false only when root_protected was asked and root_privs is missing
  CapabilitySet capabilities = 0;              // of the chosen rule (root: kCapAllGrants)
  std::vector<std::string> granting_policies;  // policies granting the operation's capability
  std::string matched_path;                    // the chosen rule's path string, "" if none
  // Why the request was denied, for logs; empty when allowed. Names parameters, never values.
  std::string reason;
};

class Acl {
 public:
  // Builds the ACL of a token holding `policies`. A policy named "root" makes the ACL root; like
  // Vault, root must then be the only policy (InvalidArgument otherwise). `identity` renders
  // templated paths; without it every templated path is dropped.
  static absl::StatusOr<Acl> Create(std::span<const Policy> policies,
                                    const IdentityContext* identity = nullptr);
  static absl::StatusOr<Acl> Create(std::span<const Policy* const> policies,
                                    const IdentityContext* identity = nullptr);

  AclResult Allowed(const AclRequest& request) const;

  // For sys/capabilities(-self): the capability names the rule chosen for `path` carries (looked
  // up as a list request, so the trailing-'/' fallbacks apply), sorted; ["root"] for root and
  // ["deny"] when nothing matches or the rule denies.
  std::vector<std::string> Capabilities(std::string_view path) const;

  // Whether any rule grants something somewhere at or below `prefix` (a mount path such as
  // "secret/"): Vault's preflight check for sys/internal/ui/mounts/<path>.
  bool AnyGrantUnder(std::string_view prefix) const;

  bool is_root() const { return root_; }

  // "<path>: <why>" for each templated path that was dropped while building, for diagnostics.
  const std::vector<std::string>& dropped_paths() const { return dropped_paths_; }

 private:
  // One merged rule: everything the policies say about one path string.
  struct Permissions {
    std::string path;  // the rule's path string as written (trailing '*' included)
    CapabilitySet capabilities = 0;
    int64_t min_wrapping_ttl = 0;
    int64_t max_wrapping_ttl = 0;
    ParamMap allowed_parameters;
    ParamMap denied_parameters;
    std::vector<std::string> required_parameters;
    // For each capability bit, the policies that contributed it, in policy order.
    std::array<std::vector<std::string>, kNumCapabilities> granting;
  };

  // A '+' rule, pre-split for matching.
  struct SegmentRule {
    std::vector<std::string> segments;  // the path without its '*', split at '/'
    bool is_prefix = false;
    size_t first_wildcard = 0;  // index of the first '+' in `path`
    size_t wildcards = 0;       // number of segments that are exactly "+"
    size_t length = 0;          // length of the path without its '*'
    Permissions permissions;
  };

  Acl() = default;
  void AddRule(const std::string& policy_name, const PathRule& rule, const std::string& path,
               const PathShape& shape);
  static void Merge(const std::string& policy_name, const PathRule& rule, Permissions& into);
  const Permissions* Lookup(std::string_view path, bool list) const;
  const Permissions* LookupNonExact(std::string_view path) const;

  bool root_ = false;
  std::map<std::string, Permissions, std::less<>> exact_;
  std::map<std::string, Permissions, std::less<>> prefix_;   // keyed without the trailing '*'
  std::map<std::string, SegmentRule, std::less<>> segment_;  // keyed by the path as written
  std::vector<std::string> dropped_paths_;
};

}  // namespace strongroom::policy
