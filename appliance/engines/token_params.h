// The token_* fields every auth method's role carries (Vault's tokenutil): which policies and
// TTLs a login token gets. Shared by AppRole and Kubernetes auth.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "appliance/core/json.h"

namespace strongroom::core {
struct CoreOptions;
struct TokenEntry;
}  // namespace strongroom::core

namespace strongroom::engines {

// Vault's token_type values: "default" and "" become "default-service"; anything else that is not
// "service", "batch", "default-service" or "default-batch" is InvalidArgument.
absl::StatusOr<std::string> NormalizeTokenType(std::string_view type);

struct TokenParams {
  std::vector<std::string> policies;  // lower-cased, sorted, unique
  int64_t ttl = 0;                    // seconds; 0 = mount/system default
  int64_t max_ttl = 0;                // seconds; 0 = system maximum
  int64_t num_uses = 0;
  int64_t period = 0;
  bool no_default_policy = false;
  // "service", "batch", "default-service" or "default-batch" (Vault's "default" is stored as
  // "default-service"). A login cannot choose, so the default-* forms give their named type.
  std::string token_type = "default-service";

  bool Batch() const { return token_type == "batch" || token_type == "default-batch"; }

  // Applies a role write: token_policies, token_ttl, token_max_ttl, token_num_uses,
  // token_period, token_no_default_policy, token_type, and the legacy names policies, ttl,
  // max_ttl, period. Fields absent from `data` keep their value. InvalidArgument with Vault's
  // messages (ttl above max_ttl, negative uses, a batch token type with uses or a period,
  // token_bound_cidrs).
  absl::Status Update(const core::json::object& data);
  // The fields as a role read shows them (also the stored form).
  void AddTo(core::json::object& o) const;
  // From the stored form written by AddTo.
  static TokenParams FromStored(const core::json::object& o);
  // Gives a login token its policies (+ "default" unless no_default_policy), TTL, max TTL,
  // period and uses; returns the TTL granted (the lease_duration to answer with).
  int64_t Apply(core::TokenEntry& e, const core::CoreOptions& options, int64_t now_unix) const;
};

}  // namespace strongroom::engines
