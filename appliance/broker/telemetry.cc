#include "appliance/broker/telemetry.h"

#include <unistd.h>

#include "base/metrics_catalog.h"

namespace strongroom::broker {

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

core::TelemetryOptions TelemetryOptionsFor(const ServerConfig& config,
                                           const std::string& hostname) {
  const TelemetryConfig& t = config.telemetry;
  core::TelemetryOptions o;
  o.unauthenticated_metrics_access = config.listener.unauthenticated_metrics_access;
  o.prometheus_enabled = t.prometheus_retention_time_s > 0;
  o.usage_gauge_period = absl::Seconds(t.usage_gauge_period_s);
  o.render.prefix = t.metrics_prefix;
  o.render.prefix_filter = t.prefix_filter;
  o.render.filter_default = t.filter_default;
  o.render.max_gauge_cardinality = t.maximum_gauge_cardinality;
  if (t.enable_hostname_label) o.render.host_label = hostname;
  if (!t.disable_hostname) o.render.gauge_hostname = hostname;
  return o;
}

metrics::CollectorHandle CollectWorkerMetrics(const sandbox::Spawner* spawner) {
  return metrics::DefaultRegistry().AddCollector([spawner](metrics::Collection& c) {
    const sandbox::Supervisor::Stats st = spawner->stats();
    c.Counter("worker.restarts", "Request workers restarted after they ended",
              static_cast<double>(st.restarts));
    c.Counter("worker.seccomp_kills", "Request workers killed by their seccomp filter",
              static_cast<double>(st.seccomp_kills));
    c.Gauge("worker.running", "Request workers running", st.running);
    c.Gauge("worker.configured", "Request workers configured", st.configured);
    c.Gauge("worker.crash_loop", "1 while a worker keeps dying soon after each start",
            st.crash_loop ? 1 : 0);
    c.Gauge("worker.spawner_alive", "1 while the spawner that starts the workers runs",
            spawner->Gone() ? 0 : 1);
  });
}

}  // namespace strongroom::broker
