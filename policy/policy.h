// Vault ACL policies: the parsed form and the parser (vault-api.md section 7.1).
//
// Policies come as HCL or as the equivalent JSON document, both read by base/hcl.h:
//
//   path "secret/data/app/*" {
//     capabilities        = ["create", "read", "update", "patch", "delete", "list"]
//     allowed_parameters  = { "ttl" = ["1h", "2h"], "*" = [] }
//     denied_parameters   = { "force" = [] }
//     required_parameters = ["role"]
//     min_wrapping_ttl    = "1m"
//     max_wrapping_ttl    = "90m"
//   }
//
// Where strongroom is stricter than Vault, it is so that a policy never silently grants more (or
// enforces less) than its text says:
//  * Path keys that Vault accepts but strongroom does not enforce (mfa_methods, control_group,
//    pagination_limit, expiration, list_scan_response_keys_filter_path) are rejected rather than
//    ignored.
//  * Every capability is validated, also those listed after "deny"; repeated keys, parameter
//    names that collide after lower-casing, '*' anywhere but at the end of a path and template
//    selectors that can never resolve are errors.
//  * Wrapping TTLs must be non-negative whole seconds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/hcl.h"
#include "policy/param_value.h"

namespace strongroom::policy {

// Capability bits. The numbering is ours (stable only within one process), not Vault's.
using CapabilitySet = uint32_t;
inline constexpr CapabilitySet kCapDeny = 1u << 0;
inline constexpr CapabilitySet kCapCreate = 1u << 1;
inline constexpr CapabilitySet kCapRead = 1u << 2;
inline constexpr CapabilitySet kCapUpdate = 1u << 3;
inline constexpr CapabilitySet kCapDelete = 1u << 4;
inline constexpr CapabilitySet kCapList = 1u << 5;
inline constexpr CapabilitySet kCapSudo = 1u << 6;
inline constexpr CapabilitySet kCapPatch = 1u << 7;
inline constexpr CapabilitySet kCapSubscribe = 1u << 8;
inline constexpr int kNumCapabilities = 9;
// Everything a rule can grant; what the root policy has.
inline constexpr CapabilitySet kCapAllGrants = kCapCreate | kCapRead | kCapUpdate | kCapDelete |
                                               kCapList | kCapSudo | kCapPatch | kCapSubscribe;

// "read" -> kCapRead; 0 for an unknown name. Names are case-sensitive, as in Vault.
CapabilitySet CapabilityFromName(std::string_view name);
// The Vault names of the bits in `caps`, sorted alphabetically (sys/capabilities order).
std::vector<std::string> CapabilityNames(CapabilitySet caps);

// Parameter constraints: lower-cased parameter name -> permitted (or forbidden) values. An empty
// list means "any value"; the key "*" stands for every parameter.
using ParamMap = std::map<std::string, std::vector<ParamValue>, std::less<>>;

struct PathRule {
  // The path as written, with one leading '/' removed. A trailing '*' is kept, so that "foo" and
  // "foo*" stay distinct rules (Vault keeps them in different trees). Templates are unrendered.
  std::string path;
  hcl::Position pos;                   // of the path block, for diagnostics
  bool is_prefix = false;              // ends in '*'
  bool has_segment_wildcards = false;  // uses '+' (Vault's test: "+", "+/..." or ".../+...")
  bool templated = false;              // contains {{ }}; rendered per token by the ACL builder
  CapabilitySet capabilities = 0;      // a rule with kCapDeny has no other bit and no parameters
  ParamMap allowed_parameters;
  ParamMap denied_parameters;
  std::vector<std::string> required_parameters;  // as written; matched lower-cased
  int64_t min_wrapping_ttl = 0;                  // seconds; 0 = no bound
  int64_t max_wrapping_ttl = 0;                  // seconds; 0 = no bound
  std::vector<std::string> subscribe_event_types;
};

struct Policy {
  std::string name;
  std::vector<PathRule> paths;  // in source order; the same path may appear more than once
  bool templated = false;       // some path holds a template
};

// Parses `text` (HCL or JSON). `name` is taken as given (the policy store lower-cases it); a
// `name = "..."` attribute in the text is accepted and ignored, as in Vault. Errors are
// InvalidArgument "failed to parse policy: line L, column C: <what>".
absl::StatusOr<Policy> ParsePolicy(std::string_view name, std::string_view text);

// The shape of a (rendered) path: is_prefix and has_segment_wildcards as in PathRule. Errors for
// "+*" and for '*' anywhere but at the end. Used by the parser and again by the ACL builder on
// rendered templates.
struct PathShape {
  bool is_prefix = false;
  bool has_segment_wildcards = false;
};
absl::StatusOr<PathShape> ClassifyPath(std::string_view path);

// Vault's duration syntax for TTL fields, in whole seconds: "" (0), an integer string (seconds),
// "<n>d" (days) or a Go duration ("90m", "1h30m", "1.5h"). Negative values and fractions of a
// second are errors.
absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view text);

}  // namespace strongroom::policy
