#include "policy/acl.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"
#include "policy/builtin_policies.h"

namespace strongroom::policy {
namespace {

std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

size_t BitIndex(CapabilitySet bit) { return static_cast<size_t>(std::countr_zero(bit)); }

CapabilitySet RequiredCapability(Operation op) {
  switch (op) {
    case Operation::kRead:
      return kCapRead;
    case Operation::kList:
      return kCapList;
    case Operation::kCreate:
      return kCapCreate;
    case Operation::kUpdate:
    case Operation::kRenew:
    case Operation::kRevoke:
    case Operation::kRollback:
      return kCapUpdate;
    case Operation::kPatch:
      return kCapPatch;
    case Operation::kDelete:
      return kCapDelete;
  }
  return 0;
}

// Parameter checks apply to the operations that carry a body the backend acts on.
bool ChecksParameters(Operation op) {
  return op == Operation::kRead || op == Operation::kCreate || op == Operation::kUpdate ||
         op == Operation::kPatch;
}

std::string_view StripLeadingSlashes(std::string_view path) {
  while (path.starts_with('/')) path.remove_prefix(1);
  return path;
}

std::string Lower(std::string_view s) { return absl::AsciiStrToLower(Av(s)); }

void MergeParamMap(const ParamMap& from, ParamMap& into) {
  for (const auto& [key, values] : from) {
    auto it = into.find(key);
    if (it == into.end()) {
      into.emplace(key, values);
    } else if (values.empty() || it->second.empty()) {
      // An empty list means "any value"; unioned with anything it stays "any value".
      it->second.clear();
    } else {
      it->second.insert(it->second.end(), values.begin(), values.end());
    }
  }
}

// The smaller of two bounds where 0 means "no bound" (Vault prefers the shorter lifetime).
int64_t SmallerNonZero(int64_t existing, int64_t incoming) {
  if (incoming > 0 && (existing == 0 || incoming < existing)) return incoming;
  return existing;
}

// One candidate of the non-exact lookup, described the way Vault's priority order needs.
struct Candidate {
  size_t first_wildcard = 0;  // position of the first '+' or of the glob '*'
  size_t wildcards = 0;       // number of "+" segments
  bool is_prefix = false;     // ends in '*'
  std::string_view wc_path;   // the path without its trailing '*'
};

// Whether `a` loses against `b`. In order, the lower-priority candidate is the one that
//  (1) has its first '+' or '*' earlier:     foo/+ loses against foo/a*;
//  (2) ends in '*' while the other does not: foo/+/ba* loses against foo/+/bar, foo/* against
//      foo/+ (a prefix rule's "first wildcard" is where its '*' stands);
//  (3) has more "+" segments:                foo/+/+/x loses against foo/+/b/x;
//  (4) is shorter (without the '*'):         foo/+/bar/b* loses against foo/+/bar/ba*;
//  (5) is lexicographically smaller, a tie-break that keeps the choice deterministic.
// The order is total: two candidates never share both their path and their '*'.
bool LowerPriority(const Candidate& a, const Candidate& b) {
  if (a.first_wildcard != b.first_wildcard) return a.first_wildcard < b.first_wildcard;
  if (a.is_prefix != b.is_prefix) return a.is_prefix;
  if (a.wildcards != b.wildcards) return a.wildcards > b.wildcards;
  if (a.wc_path.size() != b.wc_path.size()) return a.wc_path.size() < b.wc_path.size();
  return a.wc_path < b.wc_path;
}

}  // namespace

absl::StatusOr<Acl> Acl::Create(std::span<const Policy> policies, const IdentityContext* identity) {
  std::vector<const Policy*> pointers;
  pointers.reserve(policies.size());
  for (const Policy& p : policies) pointers.push_back(&p);
  return Create(std::span<const Policy* const>(pointers), identity);
}

absl::StatusOr<Acl> Acl::Create(std::span<const Policy* const> policies,
                                const IdentityContext* identity) {
  Acl acl;
  size_t count = 0;
  for (const Policy* policy : policies) {
    if (policy == nullptr) continue;
    ++count;
    if (policy->name == kRootPolicyName) acl.root_ = true;
  }
  if (acl.root_) {
    // Vault refuses this combination too; a token is either root or not.
    if (count != 1) return absl::InvalidArgumentError("other policies present along with root");
    return acl;
  }
  for (const Policy* policy : policies) {
    if (policy == nullptr) continue;
    for (const PathRule& rule : policy->paths) {
      if (!rule.templated) {
        acl.AddRule(policy->name, rule, rule.path,
                    PathShape{rule.is_prefix, rule.has_segment_wildcards});
        continue;
      }
      // A path that does not render is dropped: the template was meant to narrow the rule to
      // this token, and no rendering means no access through it, never broader access.
      if (identity == nullptr) {
        acl.dropped_paths_.push_back(absl::StrCat(rule.path, ": no identity"));
        continue;
      }
      absl::StatusOr<std::string> rendered = RenderPath(rule.path, *identity);
      if (!rendered.ok()) {
        acl.dropped_paths_.push_back(absl::StrCat(rule.path, ": ", rendered.status().message()));
        continue;
      }
      absl::StatusOr<PathShape> shape = ClassifyPath(*rendered);
      if (!shape.ok()) {
        acl.dropped_paths_.push_back(absl::StrCat(rule.path, ": ", shape.status().message()));
        continue;
      }
      acl.AddRule(policy->name, rule, *rendered, *shape);
    }
  }
  return acl;
}

void Acl::AddRule(const std::string& policy_name, const PathRule& rule, const std::string& path,
                  const PathShape& shape) {
  Permissions* into = nullptr;
  if (shape.has_segment_wildcards) {
    auto [it, inserted] = segment_.try_emplace(path);
    SegmentRule& seg = it->second;
    if (inserted) {
      std::string_view bare = path;
      seg.is_prefix = shape.is_prefix;
      if (seg.is_prefix) bare.remove_suffix(1);
      for (std::string_view part : SplitSegments(bare)) {
        seg.segments.emplace_back(part);
        if (part == "+") ++seg.wildcards;
      }
      seg.first_wildcard = path.find('+');
      seg.length = bare.size();
    }
    into = &seg.permissions;
  } else if (shape.is_prefix) {
    into = &prefix_[path.substr(0, path.size() - 1)];
  } else {
    into = &exact_[path];
  }
  into->path = path;
  Merge(policy_name, rule, *into);
}

void Acl::Merge(const std::string& policy_name, const PathRule& rule, Permissions& into) {
  // Once a path is denied by any policy nothing else about it matters.
  if ((into.capabilities & kCapDeny) != 0) return;
  if ((rule.capabilities & kCapDeny) != 0) {
    Permissions denied;
    denied.path = std::move(into.path);
    denied.capabilities = kCapDeny;
    denied.granting[BitIndex(kCapDeny)].push_back(policy_name);
    into = std::move(denied);
    return;
  }
  into.capabilities |= rule.capabilities;
  for (int i = 0; i < kNumCapabilities; ++i) {
    const CapabilitySet bit = CapabilitySet{1} << i;
    if ((rule.capabilities & bit) == 0) continue;
    std::vector<std::string>& names = into.granting[static_cast<size_t>(i)];
    if (std::find(names.begin(), names.end(), policy_name) == names.end()) {
      names.push_back(policy_name);
    }
  }
  into.min_wrapping_ttl = SmallerNonZero(into.min_wrapping_ttl, rule.min_wrapping_ttl);
  into.max_wrapping_ttl = SmallerNonZero(into.max_wrapping_ttl, rule.max_wrapping_ttl);
  MergeParamMap(rule.allowed_parameters, into.allowed_parameters);
  MergeParamMap(rule.denied_parameters, into.denied_parameters);
  for (const std::string& name : rule.required_parameters) {
    if (std::find(into.required_parameters.begin(), into.required_parameters.end(), name) ==
        into.required_parameters.end()) {
      into.required_parameters.push_back(name);
    }
  }
}

const Acl::Permissions* Acl::LookupNonExact(std::string_view path) const {
  const Permissions* best = nullptr;
  Candidate best_candidate;
  auto consider = [&](const Candidate& c, const Permissions* p) {
    if (best == nullptr || LowerPriority(best_candidate, c)) {
      best = p;
      best_candidate = c;
    }
  };

  // The longest matching prefix rule is the only prefix candidate.
  const std::string* longest = nullptr;
  const Permissions* longest_permissions = nullptr;
  for (const auto& [prefix, permissions] : prefix_) {
    if (path.starts_with(prefix) && (longest == nullptr || prefix.size() > longest->size())) {
      longest = &prefix;
      longest_permissions = &permissions;
    }
  }
  if (longest != nullptr) {
    consider(Candidate{longest->size(), 0, true, *longest}, longest_permissions);
  }
  if (segment_.empty()) return best;

  const std::vector<std::string_view> parts = SplitSegments(path);
  for (const auto& [full_path, seg] : segment_) {
    const size_t n = seg.segments.size();
    if (parts.size() < n) continue;
    if (!seg.is_prefix && parts.size() != n) continue;
    bool matched = true;
    for (size_t i = 0; i < n && matched; ++i) {
      const std::string& want = seg.segments[i];
      matched = want == "+" || want == parts[i] ||
                (seg.is_prefix && i + 1 == n && parts[i].starts_with(want));
    }
    if (!matched) continue;
    consider(Candidate{seg.first_wildcard, seg.wildcards, seg.is_prefix,
                       std::string_view(full_path).substr(0, seg.length)},
             &seg.permissions);
  }
  return best;
}

const Acl::Permissions* Acl::Lookup(std::string_view path, bool list) const {
  if (auto it = exact_.find(path); it != exact_.end()) return &it->second;
  const bool trailing_slash = path.ends_with('/');
  if (list && trailing_slash) {
    if (auto it = exact_.find(path.substr(0, path.size() - 1)); it != exact_.end()) {
      return &it->second;
    }
  }
  if (const Permissions* p = LookupNonExact(path)) return p;
  // A list of "foo/" may be granted by rules written for "foo" (e.g. "foo*" or "+/foo").
  if (list && trailing_slash) return LookupNonExact(path.substr(0, path.size() - 1));
  return nullptr;
}

AclResult Acl::Allowed(const AclRequest& request) const {
  AclResult result;
  if (root_) {
    result.allowed = true;
    result.is_root = true;
    result.root_privs = true;
    result.capabilities = kCapAllGrants;
    result.granting_policies = {std::string(kRootPolicyName)};
    return result;
  }
  const Operation op = request.operation;
  const Permissions* p = Lookup(StripLeadingSlashes(request.path), op == Operation::kList);
  result.sudo_ok = !request.root_protected;
  if (p == nullptr) {
    result.reason = "no policy rule matches the path";
    return result;
  }
  result.matched_path = p->path;
  result.capabilities = p->capabilities;
  result.root_privs = (p->capabilities & kCapSudo) != 0;
  result.sudo_ok = !request.root_protected || result.root_privs;

  const CapabilitySet needed = RequiredCapability(op);
  if ((p->capabilities & needed) == 0) {
    result.reason = (p->capabilities & kCapDeny) != 0
                        ? absl::StrCat("denied by the rule for \"", p->path, "\"")
                        : absl::StrCat("the rule for \"", p->path, "\" does not grant \"",
                                       CapabilityNames(needed).front(), "\"");
    return result;
  }
  result.granting_policies = p->granting[BitIndex(needed)];

  const std::optional<int64_t>& ttl = request.wrap_ttl;
  if (p->max_wrapping_ttl > 0 && (!ttl.has_value() || *ttl > p->max_wrapping_ttl)) {
    result.reason = absl::StrCat("the response must be wrapped with a TTL of at most ",
                                 p->max_wrapping_ttl, "s");
    return result;
  }
  if (p->min_wrapping_ttl > 0 && (!ttl.has_value() || *ttl < p->min_wrapping_ttl)) {
    result.reason = absl::StrCat("the response must be wrapped with a TTL of at least ",
                                 p->min_wrapping_ttl, "s");
    return result;
  }
  // Merging can produce bounds that no TTL satisfies; nothing is allowed then.
  if (p->min_wrapping_ttl != 0 && p->max_wrapping_ttl != 0 &&
      p->max_wrapping_ttl < p->min_wrapping_ttl) {
    result.reason = "the merged wrapping TTL bounds exclude every TTL";
    return result;
  }

  if (ChecksParameters(op)) {
    for (const std::string& required : p->required_parameters) {
      // Vault looks the lower-cased name up in the request data as sent.
      const std::string want = Lower(required);
      const bool present = std::any_of(request.data.begin(), request.data.end(),
                                       [&want](const ParamEntry& e) { return e.first == want; });
      if (!present) {
        result.reason = absl::StrCat("required parameter \"", want, "\" is missing");
        return result;
      }
    }
    if (!request.data.empty()) {
      if (!p->denied_parameters.empty()) {
        if (p->denied_parameters.contains("*")) {
          result.reason = "the rule denies all parameters";
          return result;
        }
        for (const auto& [name, value] : request.data) {
          const auto it = p->denied_parameters.find(Lower(name));
          if (it != p->denied_parameters.end() && ValueInList(value, it->second)) {
            result.reason = absl::StrCat("parameter \"", Lower(name), "\" is denied");
            return result;
          }
        }
      }
      const ParamMap& allowed = p->allowed_parameters;
      const bool allowed_all = allowed.contains("*");
      if (!allowed.empty() && !(allowed.size() == 1 && allowed_all)) {
        for (const auto& [name, value] : request.data) {
          const auto it = allowed.find(Lower(name));
          if (it == allowed.end() ? !allowed_all : !ValueInList(value, it->second)) {
            result.reason = absl::StrCat("parameter \"", Lower(name), "\" is not allowed");
            return result;
          }
        }
      }
    }
  }

  if (!result.sudo_ok) {
    result.reason = "the path requires the \"sudo\" capability";
    return result;
  }
  result.allowed = true;
  return result;
}

bool Acl::AnyGrantUnder(std::string_view prefix) const {
  if (root_) return true;
  auto grants = [](const Permissions& p) {
    return (p.capabilities & kCapDeny) == 0 && p.capabilities != 0;
  };
  // A rule counts when its path lies below the prefix, or (globs) when it covers the prefix.
  for (const auto& [path, p] : exact_) {
    if (std::string_view(path).starts_with(prefix) && grants(p)) return true;
  }
  for (const auto& [path, p] : prefix_) {
    const std::string_view key(path);
    if ((key.starts_with(prefix) || prefix.starts_with(key)) && grants(p)) return true;
  }
  for (const auto& [path, rule] : segment_) {
    const std::string_view before_wildcard = std::string_view(path).substr(0, rule.first_wildcard);
    if ((before_wildcard.starts_with(prefix) || prefix.starts_with(before_wildcard)) &&
        grants(rule.permissions)) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> Acl::Capabilities(std::string_view path) const {
  if (root_) return {std::string(kRootPolicyName)};
  const Permissions* p = Lookup(StripLeadingSlashes(path), /*list=*/true);
  const CapabilitySet caps = p == nullptr ? 0 : p->capabilities;
  if ((caps & kCapDeny) != 0 || caps == 0) return {"deny"};
  return CapabilityNames(caps);
}

}  // namespace strongroom::policy
