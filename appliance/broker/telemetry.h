// The broker's telemetry set-up: the telemetry stanzas (config.h) as the core uses them, and
// the request workers' metrics (the spawner's supervisor counts restarts and seccomp kills).
#pragma once

#include "appliance/broker/config.h"
#include "appliance/core/core.h"
#include "base/metrics.h"
#include "sandbox/spawner.h"

namespace strongroom::broker {

// This machine's host name ("" when it cannot be read).
std::string HostName();

// `hostname`: this machine's (disable_hostname = false, enable_hostname_label).
core::TelemetryOptions TelemetryOptionsFor(const ServerConfig& config, const std::string& hostname);

// worker.restarts, worker.seccomp_kills, worker.running, worker.configured, worker.crash_loop
// and worker.spawner_alive, read from `spawner` at each scrape while the handle lives.
metrics::CollectorHandle CollectWorkerMetrics(const sandbox::Spawner* spawner);

}  // namespace strongroom::broker
