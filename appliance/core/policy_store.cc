#include "appliance/core/policy_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "policy/builtin_policies.h"
#include "policy/policy.h"

namespace strongroom::core {
namespace {

constexpr char kPolicyPrefix[] = "sys/policy/";

policy::ParamValue ToParam(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return policy::ParamValue::Null();
    case json::kind::bool_:
      return policy::ParamValue::Bool(v.as_bool());
    case json::kind::int64:
      return policy::ParamValue::Number(static_cast<double>(v.as_int64()));
    case json::kind::uint64:
      return policy::ParamValue::Number(static_cast<double>(v.as_uint64()));
    case json::kind::double_:
      return policy::ParamValue::Number(v.as_double());
    case json::kind::string:
      return policy::ParamValue::String(std::string(v.as_string()));
    case json::kind::array: {
      std::vector<policy::ParamValue> items;
      for (const auto& e : v.as_array()) items.push_back(ToParam(e));
      return policy::ParamValue::List(std::move(items));
    }
    case json::kind::object: {
      std::vector<std::pair<std::string, policy::ParamValue>> members;
      for (const auto& [k, e] : v.as_object()) members.emplace_back(std::string(k), ToParam(e));
      return policy::ParamValue::Object(std::move(members));
    }
  }
  return policy::ParamValue::Null();
}

}  // namespace

std::vector<policy::ParamEntry> ToParamEntries(const json::object& data) {
  std::vector<policy::ParamEntry> out;
  out.reserve(data.size());
  for (const auto& [k, v] : data) out.emplace_back(std::string(k), ToParam(v));
  return out;
}

absl::StatusOr<std::string> PolicyStore::NormalizeName(std::string_view name) {
  if (name.empty() || name.size() > 128) return absl::InvalidArgumentError("invalid policy name");
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.') {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid policy name \"", std::string(name), "\""));
    }
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> PolicyStore::GetText(const std::string& name) {
  if (name == policy::kRootPolicyName) return std::optional<std::string>();
  if (name == policy::kResponseWrappingPolicyName) {
    // Built in and fixed: it is every wrapping token's only policy.
    return std::optional<std::string>(std::string(policy::kResponseWrappingPolicyText));
  }
  ASSIGN_OR_RETURN(auto stored, storage_->Get(kPolicyPrefix + name));
  if (stored) return stored;
  if (name == policy::kDefaultPolicyName) {
    return std::optional<std::string>(std::string(policy::kDefaultPolicyText));
  }
  return std::optional<std::string>();
}

absl::Status PolicyStore::Put(const std::string& name, const std::string& text) {
  if (name == policy::kRootPolicyName)
    return absl::InvalidArgumentError("cannot update \"root\" policy");
  if (name == policy::kResponseWrappingPolicyName)
    return absl::InvalidArgumentError("cannot update \"response-wrapping\" policy");
  ASSIGN_OR_RETURN(auto parsed, policy::ParsePolicy(name, text));
  const uint64_t generation = Generation();
  RETURN_IF_ERROR(storage_->Put(kPolicyPrefix + name, text));
  std::lock_guard<std::mutex> lock(mu_);
  // Not when the cache was dropped meanwhile: the store may hold a newer version by then.
  if (generation == generation_) {
    cache_[name] = std::make_shared<const policy::Policy>(std::move(parsed));
  }
  return absl::OkStatus();
}

absl::Status PolicyStore::Delete(const std::string& name) {
  if (name == policy::kRootPolicyName)
    return absl::InvalidArgumentError("cannot delete \"root\" policy");
  if (name == policy::kResponseWrappingPolicyName)
    return absl::InvalidArgumentError("cannot delete \"response-wrapping\" policy");
  if (name == policy::kDefaultPolicyName)
    return absl::InvalidArgumentError("cannot delete default policy");
  RETURN_IF_ERROR(storage_->Delete(kPolicyPrefix + name));
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PolicyStore::List() {
  ASSIGN_OR_RETURN(auto names, storage_->List(kPolicyPrefix));
  names.emplace_back(policy::kDefaultPolicyName);
  names.emplace_back(policy::kRootPolicyName);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

absl::StatusOr<bool> PolicyStore::Exists(const std::string& name) {
  if (name == policy::kRootPolicyName) return true;
  ASSIGN_OR_RETURN(auto text, GetText(name));
  return text.has_value();
}

absl::StatusOr<std::shared_ptr<const policy::Policy>> PolicyStore::Load(const std::string& name) {
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
    generation = generation_;
  }
  ASSIGN_OR_RETURN(auto text, GetText(name));
  std::shared_ptr<const policy::Policy> parsed;
  if (text) {
    ASSIGN_OR_RETURN(auto p, policy::ParsePolicy(name, *text));
    parsed = std::make_shared<const policy::Policy>(std::move(p));
  } else {
    auto empty = std::make_shared<policy::Policy>();  // a deleted policy acts as an empty one
    empty->name = name;
    parsed = std::move(empty);
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Kept only when the cache was not dropped since the read: a Clear() says the store changed
  // (a standby applied a policy write), and this read may be from before.
  if (generation == generation_) cache_[name] = parsed;
  return parsed;
}

absl::StatusOr<policy::Acl> PolicyStore::BuildAcl(const std::vector<std::string>& names,
                                                  const policy::IdentityContext* identity) {
  std::vector<std::shared_ptr<const policy::Policy>> held;
  std::vector<const policy::Policy*> ptrs;
  policy::Policy root;
  root.name = std::string(policy::kRootPolicyName);
  for (const auto& n : names) {
    if (n == policy::kRootPolicyName) {
      ptrs.push_back(&root);
      continue;
    }
    ASSIGN_OR_RETURN(auto p, Load(n));
    ptrs.push_back(p.get());
    held.push_back(std::move(p));
  }
  return policy::Acl::Create(std::span<const policy::Policy* const>(ptrs.data(), ptrs.size()),
                             identity);
}

void PolicyStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  cache_.clear();
}

}  // namespace strongroom::core
