// libFuzzer target for the policy parser (policy/policy.h). Besides crashes, leaks and UB
// (ASan/UBSan), it checks what callers rely on: every error is InvalidArgument and starts with
// "failed to parse policy: line L, column C: ", and every accepted policy is internally
// consistent (shape flags match the path, deny stands alone, TTL bounds ordered) and can be
// compiled into an ACL and queried.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "policy/acl.h"
#include "policy/policy.h"
#include "policy/template.h"

namespace {

using strongroom::policy::Acl;
using strongroom::policy::ClassifyPath;
using strongroom::policy::PathRule;
using strongroom::policy::Policy;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "policy_parse_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

void CheckRule(const PathRule& rule) {
  Check(rule.is_prefix == rule.path.ends_with('*'), "is_prefix iff trailing '*'");
  absl::StatusOr<strongroom::policy::PathShape> shape = ClassifyPath(rule.path);
  Check(shape.ok(), "accepted path classifies");
  Check(shape->is_prefix == rule.is_prefix, "classification is stable (prefix)");
  Check(shape->has_segment_wildcards == rule.has_segment_wildcards,
        "classification is stable (segments)");
  absl::StatusOr<bool> templated = strongroom::policy::ValidateTemplates(rule.path);
  Check(templated.ok() && *templated == rule.templated, "templated flag matches the path");
  Check(rule.path.find("+*") == std::string::npos, "no '+*'");
  if ((rule.capabilities & strongroom::policy::kCapDeny) != 0) {
    Check(rule.capabilities == strongroom::policy::kCapDeny, "deny stands alone");
    Check(rule.allowed_parameters.empty() && rule.denied_parameters.empty() &&
              rule.required_parameters.empty(),
          "deny has no parameters");
  }
  Check(rule.min_wrapping_ttl >= 0 && rule.max_wrapping_ttl >= 0, "TTLs non-negative");
  Check(rule.min_wrapping_ttl == 0 || rule.max_wrapping_ttl == 0 ||
            rule.min_wrapping_ttl <= rule.max_wrapping_ttl,
        "TTL bounds ordered");
  for (const auto& [name, values] : rule.allowed_parameters) {
    for (char c : name) Check(!(c >= 'A' && c <= 'Z'), "parameter names lower-cased");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Policy> policy = strongroom::policy::ParsePolicy("fuzz", text);
  if (!policy.ok()) {
    Check(policy.status().code() == absl::StatusCode::kInvalidArgument,
          "errors are InvalidArgument");
    const std::string message(policy.status().message());
    int line = 0;
    int column = 0;
    Check(std::sscanf(message.c_str(), "failed to parse policy: line %d, column %d: ", &line,
                      &column) == 2,
          "error message starts with the prefix and a position");
    Check(line >= 1 && column >= 1, "position is 1-based");
    return 0;
  }
  bool templated = false;
  for (const PathRule& rule : policy->paths) {
    CheckRule(rule);
    templated = templated || rule.templated;
  }
  Check(templated == policy->templated, "policy templated iff a rule is");

  const Policy* one[] = {&*policy};
  absl::StatusOr<Acl> acl = Acl::Create(one);
  Check(acl.ok(), "a parsed policy always builds an ACL");
  for (const PathRule& rule : policy->paths) {
    const std::vector<std::string> caps = acl->Capabilities(rule.path);
    Check(!caps.empty(), "capabilities never empty");
  }
  return 0;
}
