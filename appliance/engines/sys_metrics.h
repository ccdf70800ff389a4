// sys/metrics (Vault API: /sys/metrics): the process's metrics (base/metrics_catalog.h and the
// collectors) as the telemetry stanza renders them, in Vault's two forms:
//   format=""            go-metrics' in-memory summary, Vault's default JSON:
//                        {"Timestamp": "2006-01-02 15:04:00 +0000 UTC", "Gauges": [{Name,
//                        Value, Labels}], "Points": [], "Counters": [...], "Samples": [...]},
//                        counters and samples as {Name, Count, Rate, Sum, Min, Max, Mean,
//                        Stddev, Labels}; the raw body, not the Vault envelope
//   format=prometheus    the Prometheus text format 0.0.4 (Content-Type text/plain;
//                        version=0.0.4); 400 "prometheus is not enabled" when
//                        prometheus_retention_time is 0
// any other format: 400 `metric response format "x" unknown` (text/plain, as Vault).
//
// Unlike Vault's in-memory sink (the last finished 10-second interval), counts and sums run
// from the process's start, in both forms: a counter's Count is how many times it was added
// to and its Sum the total; Rate is Sum per second since the start; a counter's Min, Max and
// Mean are its mean increment (strongroom does not keep each increment); a histogram's Min,
// Max, Mean and Stddev are over every observation since the start.
#pragma once

#include "absl/status/statusor.h"
#include "appliance/core/core.h"

namespace strongroom::engines {

// `query`: the request's data (its query parameters; "format").
absl::StatusOr<core::Response> MetricsResponse(const core::TelemetryOptions& telemetry,
                                               const core::json::object& query);

// The JSON form of a rendered snapshot.
core::json::object MetricsJson(const metrics::Snapshot& rendered);

}  // namespace strongroom::engines
