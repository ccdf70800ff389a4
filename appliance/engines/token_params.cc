#include "appliance/engines/token_params.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "appliance/core/core.h"
#include "appliance/core/token_store.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::json::array;
using core::json::object;

// The field under its current name, else under its legacy one.
template <typename Getter>
auto Either(const object& d, const char* name, const char* legacy, Getter get)
    -> decltype(get(d, name)) {
  auto v = get(d, name);
  if (!v.ok() || v->has_value() || legacy == nullptr) return v;
  return get(d, legacy);
}

}  // namespace

absl::StatusOr<std::string> NormalizeTokenType(std::string_view type) {
  if (type.empty() || type == "default" || type == "default-service") return "default-service";
  if (type == "service" || type == "batch" || type == "default-batch") return std::string(type);
  return absl::InvalidArgumentError("invalid 'token_type' value");
}

absl::Status TokenParams::Update(const object& d) {
  ASSIGN_OR_RETURN(auto pols, Either(d, "token_policies", "policies", core::GetStringList));
  if (pols) {
    std::set<std::string> uniq;
    for (auto& p : *pols) {
      std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(p));
      if (!n.empty()) uniq.insert(n);
    }
    std::vector<std::string> normalized(uniq.begin(), uniq.end());
    RETURN_IF_ERROR(core::CheckLoginPolicies(normalized));
    policies = std::move(normalized);
  }
  ASSIGN_OR_RETURN(auto t, Either(d, "token_ttl", "ttl", core::GetDurationSeconds));
  if (t) ttl = *t;
  ASSIGN_OR_RETURN(auto mt, Either(d, "token_max_ttl", "max_ttl", core::GetDurationSeconds));
  if (mt) max_ttl = *mt;
  if (ttl < 0 || max_ttl < 0) return absl::InvalidArgumentError("TTLs cannot be negative");
  if (max_ttl > 0 && ttl > max_ttl) {
    return absl::InvalidArgumentError(
        "\"token_ttl\" value must be less than \"token_max_ttl\" value");
  }
  ASSIGN_OR_RETURN(auto uses, core::GetInt(d, "token_num_uses"));
  if (uses) {
    if (*uses < 0) return absl::InvalidArgumentError("token_num_uses cannot be negative");
    num_uses = *uses;
  }
  ASSIGN_OR_RETURN(auto per, Either(d, "token_period", "period", core::GetDurationSeconds));
  if (per) {
    if (*per < 0) return absl::InvalidArgumentError("token_period cannot be negative");
    period = *per;
  }
  ASSIGN_OR_RETURN(auto nodef, core::GetBool(d, "token_no_default_policy"));
  if (nodef) no_default_policy = *nodef;
  ASSIGN_OR_RETURN(auto type, core::GetString(d, "token_type"));
  if (type) {
    ASSIGN_OR_RETURN(token_type, NormalizeTokenType(*type));
  }
  if (Batch() && num_uses != 0) {
    return absl::InvalidArgumentError("batch tokens cannot have \"num_uses\" set");
  }
  if (Batch() && period != 0) {
    return absl::InvalidArgumentError("batch tokens cannot have \"period\" set");
  }
  ASSIGN_OR_RETURN(auto cidrs, Either(d, "token_bound_cidrs", "bound_cidrs", core::GetStringList));
  if (cidrs && !cidrs->empty()) {
    return absl::InvalidArgumentError("token_bound_cidrs is not supported");
  }
  return absl::OkStatus();
}

void TokenParams::AddTo(object& o) const {
  array pol;
  for (const auto& p : policies) pol.emplace_back(p);
  o["token_policies"] = pol;
  o["policies"] = std::move(pol);  // Vault still shows the legacy name
  o["token_ttl"] = ttl;
  o["token_max_ttl"] = max_ttl;
  o["token_num_uses"] = num_uses;
  o["token_period"] = period;
  o["token_no_default_policy"] = no_default_policy;
  o["token_type"] = token_type;
  o["token_bound_cidrs"] = array();
  o["token_explicit_max_ttl"] = 0;
}

TokenParams TokenParams::FromStored(const object& o) {
  TokenParams t;
  auto num = [&](const char* k) { return core::GetInt(o, k).value_or(std::nullopt).value_or(0); };
  t.policies = core::GetStringList(o, "token_policies")
                   .value_or(std::nullopt)
                   .value_or(std::vector<std::string>{});
  t.ttl = num("token_ttl");
  t.max_ttl = num("token_max_ttl");
  t.num_uses = num("token_num_uses");
  t.period = num("token_period");
  t.no_default_policy =
      core::GetBool(o, "token_no_default_policy").value_or(std::nullopt).value_or(false);
  t.token_type =
      NormalizeTokenType(
          core::GetString(o, "token_type").value_or(std::nullopt).value_or("default-service"))
          .value_or("default-service");
  return t;
}

int64_t TokenParams::Apply(core::TokenEntry& e, const core::CoreOptions& opts, int64_t now) const {
  std::set<std::string> pols(policies.begin(), policies.end());
  if (!no_default_policy) pols.insert("default");
  e.policies.assign(pols.begin(), pols.end());
  e.type = Batch() ? "batch" : "service";
  e.renewable = !Batch();
  e.num_uses = Batch() ? 0 : num_uses;
  e.period = Batch() ? 0 : period;
  const int64_t cap =
      std::min<int64_t>(max_ttl > 0 ? max_ttl : opts.max_lease_ttl, opts.max_lease_ttl);
  // A period is capped at the maximum as well (Vault's CalculateTTL): a role's token_period of
  // 285 years gives a token that lives max_lease_ttl at a time.
  int64_t granted = period > 0 ? period : (ttl > 0 ? ttl : opts.default_lease_ttl);
  granted = std::min(granted, period > 0 ? opts.max_lease_ttl : cap);
  e.ttl = granted;
  e.creation_ttl = granted;
  e.expire_unix = now + granted;
  e.max_expire_unix = period > 0 ? 0 : now + cap;
  return granted;
}

}  // namespace strongroom::engines
