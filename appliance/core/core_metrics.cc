// The core's part of sys/metrics, read at each scrape: Vault's core.unsealed, core.active,
// core.mount_table.num_entries and token.count.
#include "appliance/core/core.h"
#include "base/log.h"

namespace strongroom::core {

void Core::CollectMetrics(metrics::Collection& c) {
  const bool unsealed = !barrier_.sealed();
  c.Gauge("core.unsealed", "1 while this node is unsealed", unsealed ? 1 : 0);
  c.Gauge("core.active", "1 while this node is the active node (0: standby or sealed)",
          unsealed && active() ? 1 : 0);
  if (!unsealed) return;
  double logical[2] = {0, 0}, auth[2] = {0, 0};  // [local]
  for (const MountEntry& m : Mounts()) {
    (m.path.starts_with("auth/") ? auth : logical)[m.local ? 1 : 0] += 1;
  }
  for (int local = 0; local < 2; ++local) {
    const std::string l = local ? "true" : "false";
    c.Gauge("core.mount_table.num_entries", "Mounts in the mount table", logical[local],
            {{"type", "logical"}, {"local", l}});
    c.Gauge("core.mount_table.num_entries", "Mounts in the mount table", auth[local],
            {{"type", "auth"}, {"local", l}});
  }
  // token.count: a scan of the token store, so counted at most once per usage_gauge_period
  // (Vault's cadence for its usage gauges), on the active node only.
  const absl::Duration period = options_.telemetry.usage_gauge_period;
  if (period <= absl::ZeroDuration() || !active()) return;
  const absl::Time now = absl::Now();
  if (token_count_ < 0 || now - token_count_at_ >= period) {
    auto accessors = tokens_.ListAccessors();
    if (accessors.ok()) {
      token_count_ = static_cast<int64_t>(accessors->size());
      token_count_at_ = now;
    } else {
      LogWarn("metrics: cannot count tokens: %s", accessors.status().message());
    }
  }
  if (token_count_ >= 0) {
    c.Gauge("token.count", "Service tokens in the token store (refreshed every usage_gauge_period)",
            static_cast<double>(token_count_), {{"namespace", "root"}});
  }
}

}  // namespace strongroom::core
