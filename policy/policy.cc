#include "policy/policy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "base/strings.h"
#include "policy/quote.h"
#include "policy/template.h"

namespace strongroom::policy {
namespace {

struct CapabilityName {
  std::string_view name;
  CapabilitySet bit;
};

// Alphabetical, so that CapabilityNames() comes out sorted without a sort.
constexpr std::array<CapabilityName, kNumCapabilities> kCapabilityNames = {{
    {"create", kCapCreate},
    {"delete", kCapDelete},
    {"deny", kCapDeny},
    {"list", kCapList},
    {"patch", kCapPatch},
    {"read", kCapRead},
    {"subscribe", kCapSubscribe},
    {"sudo", kCapSudo},
    {"update", kCapUpdate},
}};

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / kNanosPerSecond;

// absl::string_view: callers pass StrCat results, literals and Status::message().
absl::Status ErrorAt(const hcl::Position& pos, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("failed to parse policy: ", hcl::Where(pos), ": ", what));
}

bool IsList(const hcl::Value& v) { return v.kind == hcl::Value::Kind::kList; }

absl::Status ParseStringList(const hcl::Attribute& attr, std::vector<std::string>& out) {
  if (!IsList(attr.value)) {
    return ErrorAt(attr.value.pos, absl::StrCat(attr.key, " must be a list of strings"));
  }
  for (const hcl::Value& item : attr.value.list) {
    if (item.kind != hcl::Value::Kind::kString) {
      return ErrorAt(item.pos, absl::StrCat(attr.key, " must be a list of strings"));
    }
    out.push_back(item.str);
  }
  return absl::OkStatus();
}

// allowed_parameters / denied_parameters: an object of name -> list of values. Names are
// lower-cased (the ACL compares them case-insensitively); two names that collide after
// lower-casing are an error because Vault would keep an arbitrary one of them.
absl::Status ParseParamMap(std::string_view key, const hcl::Position& pos,
                           const std::vector<std::pair<std::string, hcl::Value>>& members,
                           ParamMap& out) {
  for (const auto& [name, values] : members) {
    if (values.kind != hcl::Value::Kind::kList) {
      return ErrorAt(values.pos, absl::StrCat(Av(key), ": the values of parameter ",
                                              QuoteForError(name), " must be a list"));
    }
    std::vector<ParamValue> converted;
    converted.reserve(values.list.size());
    for (const hcl::Value& v : values.list) converted.push_back(FromHcl(v));
    const std::string lower = absl::AsciiStrToLower(Av(name));
    if (!out.emplace(lower, std::move(converted)).second) {
      return ErrorAt(values.pos.line > 0 ? values.pos : pos,
                     absl::StrCat(Av(key), ": duplicate parameter ", QuoteForError(name)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseTtl(const hcl::Attribute& attr) {
  const hcl::Value& v = attr.value;
  if (v.kind == hcl::Value::Kind::kNumber) {
    if (v.number < 0 || std::floor(v.number) != v.number ||
        v.number > static_cast<double>(kMaxSeconds)) {
      return ErrorAt(v.pos, absl::StrCat("invalid ", attr.key,
                                         ": must be a non-negative whole number of seconds"));
    }
    return static_cast<int64_t>(v.number);
  }
  if (v.kind != hcl::Value::Kind::kString) {
    return ErrorAt(v.pos, absl::StrCat("invalid ", attr.key, ": must be a duration"));
  }
  absl::StatusOr<int64_t> seconds = ParseDurationSeconds(v.str);
  if (!seconds.ok()) {
    return ErrorAt(v.pos, absl::StrCat("invalid ", attr.key, ": ", seconds.status().message()));
  }
  return *seconds;
}

// Keys of a path block that Vault knows but strongroom does not enforce. Accepting and ignoring
// them would make a policy weaker than it reads (an MFA requirement, an expiry), so they fail.
constexpr std::array<std::string_view, 5> kUnsupportedPathKeys = {
    "mfa_methods", "control_group", "pagination_limit", "expiration",
    "list_scan_response_keys_filter_path"};

bool IsUnsupportedPathKey(std::string_view key) {
  return std::find(kUnsupportedPathKeys.begin(), kUnsupportedPathKeys.end(), key) !=
         kUnsupportedPathKeys.end();
}

absl::StatusOr<PathRule> ParsePathBlock(const hcl::Block& block) {
  if (block.labels.size() != 1) {
    return ErrorAt(block.pos, "a path block takes exactly one label: path \"<path>\" { ... }");
  }
  PathRule rule;
  rule.pos = block.pos;
  std::string_view path = block.labels[0];
  if (path.starts_with('/')) path.remove_prefix(1);
  rule.path = std::string(path);

  absl::StatusOr<bool> templated = ValidateTemplates(rule.path);
  if (!templated.ok()) {
    return ErrorAt(block.pos, absl::StrCat("path ", QuoteForError(rule.path), ": ",
                                           templated.status().message()));
  }
  rule.templated = *templated;
  absl::StatusOr<PathShape> shape = ClassifyPath(rule.path);
  if (!shape.ok()) return ErrorAt(block.pos, shape.status().message());
  rule.is_prefix = shape->is_prefix;
  rule.has_segment_wildcards = shape->has_segment_wildcards;

  // HCL1 treats `allowed_parameters { ... }` like `allowed_parameters = { ... }`; accept both.
  std::vector<hcl::Attribute> attributes = block.attributes;
  for (const hcl::Block& nested : block.blocks) {
    if (nested.type != "allowed_parameters" && nested.type != "denied_parameters") {
      if (IsUnsupportedPathKey(nested.type)) {
        return ErrorAt(nested.pos,
                       absl::StrCat("key ", QuoteForError(nested.type), " is not supported"));
      }
      return ErrorAt(nested.pos, absl::StrCat("invalid key ", QuoteForError(nested.type)));
    }
    if (!nested.labels.empty() || !nested.blocks.empty()) {
      return ErrorAt(nested.pos, absl::StrCat(nested.type, " must be an object"));
    }
    hcl::Attribute attr;
    attr.key = nested.type;
    attr.pos = nested.pos;
    attr.value.kind = hcl::Value::Kind::kObject;
    attr.value.pos = nested.pos;
    for (const hcl::Attribute& a : nested.attributes)
      attr.value.object.emplace_back(a.key, a.value);
    attributes.push_back(std::move(attr));
  }

  std::set<std::string_view> seen;
  std::vector<std::string> capabilities;
  std::vector<hcl::Position> capability_pos;
  std::optional<std::string> legacy_policy;
  hcl::Position legacy_pos;
  for (const hcl::Attribute& attr : attributes) {
    if (!seen.insert(attr.key).second) {
      return ErrorAt(attr.pos, absl::StrCat("duplicate key ", QuoteForError(attr.key)));
    }
    const hcl::Value& v = attr.value;
    if (attr.key == "comment") {
      if (v.kind != hcl::Value::Kind::kString) return ErrorAt(v.pos, "comment must be a string");
    } else if (attr.key == "policy") {
      if (v.kind != hcl::Value::Kind::kString) return ErrorAt(v.pos, "policy must be a string");
      legacy_policy = v.str;
      legacy_pos = v.pos;
    } else if (attr.key == "capabilities") {
      RETURN_IF_ERROR(ParseStringList(attr, capabilities));
      for (const hcl::Value& item : v.list) capability_pos.push_back(item.pos);
    } else if (attr.key == "allowed_parameters" || attr.key == "denied_parameters") {
      if (v.kind != hcl::Value::Kind::kObject) {
        return ErrorAt(v.pos, absl::StrCat(attr.key, " must be an object"));
      }
      RETURN_IF_ERROR(ParseParamMap(
          attr.key, attr.pos, v.object,
          attr.key == "allowed_parameters" ? rule.allowed_parameters : rule.denied_parameters));
    } else if (attr.key == "required_parameters") {
      RETURN_IF_ERROR(ParseStringList(attr, rule.required_parameters));
    } else if (attr.key == "min_wrapping_ttl") {
      ASSIGN_OR_RETURN(rule.min_wrapping_ttl, ParseTtl(attr));
    } else if (attr.key == "max_wrapping_ttl") {
      ASSIGN_OR_RETURN(rule.max_wrapping_ttl, ParseTtl(attr));
    } else if (attr.key == "subscribe_event_types") {
      RETURN_IF_ERROR(ParseStringList(attr, rule.subscribe_event_types));
    } else if (IsUnsupportedPathKey(attr.key)) {
      return ErrorAt(attr.pos, absl::StrCat("key ", QuoteForError(attr.key), " is not supported"));
    } else {
      return ErrorAt(attr.pos, absl::StrCat("invalid key ", QuoteForError(attr.key)));
    }
  }

  // Capabilities first, so that a typo is reported even when a legacy keyword is present too.
  for (size_t i = 0; i < capabilities.size(); ++i) {
    const CapabilitySet bit = CapabilityFromName(capabilities[i]);
    if (bit == 0) {
      return ErrorAt(capability_pos[i],
                     absl::StrCat("invalid capability ", QuoteForError(capabilities[i])));
    }
    rule.capabilities |= bit;
  }
  // Legacy `policy = "..."` adds to the capabilities list; "deny" replaces it (vault-api.md 7.1).
  if (legacy_policy.has_value()) {
    constexpr CapabilitySet kWrite = kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList;
    if (*legacy_policy == "deny") {
      rule.capabilities = kCapDeny;
    } else if (*legacy_policy == "read") {
      rule.capabilities |= kCapRead | kCapList;
    } else if (*legacy_policy == "write") {
      rule.capabilities |= kWrite;
    } else if (*legacy_policy == "sudo") {
      rule.capabilities |= kWrite | kCapSudo;
    } else {
      return ErrorAt(legacy_pos, absl::StrCat("invalid policy ", QuoteForError(*legacy_policy)));
    }
  }
  if (rule.min_wrapping_ttl != 0 && rule.max_wrapping_ttl != 0 &&
      rule.max_wrapping_ttl < rule.min_wrapping_ttl) {
    return ErrorAt(block.pos, "max_wrapping_ttl cannot be less than min_wrapping_ttl");
  }
  // "deny" overrides everything else in the block; Vault drops the rest of the block too.
  if ((rule.capabilities & kCapDeny) != 0) {
    rule.capabilities = kCapDeny;
    rule.allowed_parameters.clear();
    rule.denied_parameters.clear();
    rule.required_parameters.clear();
    rule.min_wrapping_ttl = 0;
    rule.max_wrapping_ttl = 0;
  }
  return rule;
}

}  // namespace

CapabilitySet CapabilityFromName(std::string_view name) {
  for (const CapabilityName& c : kCapabilityNames) {
    if (c.name == name) return c.bit;
  }
  return 0;
}

std::vector<std::string> CapabilityNames(CapabilitySet caps) {
  std::vector<std::string> out;
  for (const CapabilityName& c : kCapabilityNames) {
    if ((caps & c.bit) != 0) out.emplace_back(c.name);
  }
  return out;
}

absl::StatusOr<PathShape> ClassifyPath(std::string_view path) {
  if (path.find("+*") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path ", QuoteForError(path), ": invalid use of wildcards ('+*' is forbidden)"));
  }
  const size_t star = path.find('*');
  if (star != std::string_view::npos && star + 1 != path.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", QuoteForError(path),
                     ": invalid use of wildcards ('*' is only allowed at the end)"));
  }
  PathShape shape;
  shape.is_prefix = star != std::string_view::npos;
  // Vault's test, kept as is: a '+' that starts a segment marks the rule as a segment-wildcard
  // rule, but only a segment that is exactly "+" matches any segment; "+x" matches literally.
  shape.has_segment_wildcards =
      path == "+" || path.starts_with("+/") || path.find("/+") != std::string_view::npos;
  return shape;
}

absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view text) {
  // base/duration's parser, with a policy's stricter rule: no fraction of a second.
  absl::StatusOr<int64_t> nanos = ParseVaultDurationNanos(text);
  if (!nanos.ok()) return nanos.status();
  if (*nanos % kNanosPerSecond != 0) {
    return absl::InvalidArgumentError("duration must be a whole number of seconds");
  }
  return *nanos / kNanosPerSecond;
}

absl::StatusOr<Policy> ParsePolicy(std::string_view name, std::string_view text) {
  absl::StatusOr<hcl::Body> body = hcl::Parse(text);
  if (!body.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to parse policy: ", body.status().message()));
  }
  Policy policy;
  policy.name = std::string(name);
  bool seen_name = false;
  for (const hcl::Attribute& attr : body->attributes) {
    if (attr.key == "name") {
      if (seen_name) return ErrorAt(attr.pos, "duplicate key \"name\"");
      seen_name = true;
      if (attr.value.kind != hcl::Value::Kind::kString) {
        return ErrorAt(attr.value.pos, "name must be a string");
      }
    } else if (attr.key == "path") {
      return ErrorAt(attr.pos, "path must be a block: path \"<path>\" { ... }");
    } else {
      return ErrorAt(attr.pos, absl::StrCat("invalid key ", QuoteForError(attr.key)));
    }
  }
  for (const hcl::Block& block : body->blocks) {
    if (block.type != "path") {
      return ErrorAt(block.pos, absl::StrCat("invalid key ", QuoteForError(block.type)));
    }
    ASSIGN_OR_RETURN(PathRule rule, ParsePathBlock(block));
    policy.templated = policy.templated || rule.templated;
    policy.paths.push_back(std::move(rule));
  }
  return policy;
}

}  // namespace strongroom::policy
