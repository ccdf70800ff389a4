// Renders a metrics snapshot (metrics.h) as the server's telemetry stanza asks (prefix, filters,
// host name, gauge cardinality) and writes it in the Prometheus text exposition format 0.0.4
// (what Vault's sys/metrics?format=prometheus serves). Vault's JSON form is built from the same
// rendered snapshot by the system backend (engines/sys_metrics.h).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/metrics.h"

namespace strongroom::metrics {

// Content-Type of the Prometheus text format, as Vault (Go's expfmt) sends it.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The telemetry stanza's settings that shape what is reported.
struct RenderOptions {
  // metrics_prefix: the first component of every name ("vault.core.handle_request"); "" for none.
  std::string prefix = "vault";
  // prefix_filter: "+name.prefix" allows, "-name.prefix" blocks, matched against the full dotted
  // name (prefix included); the longest matching rule decides, "-" over "+" for the same
  // prefix; with no matching rule, filter_default.
  std::vector<std::string> prefix_filter;
  bool filter_default = true;
  // maximum_gauge_cardinality: at most this many series per gauge (those past it are dropped).
  size_t max_gauge_cardinality = 500;
  // enable_hostname_label: a `host` label with this value on every series ("" for none).
  std::string host_label;
  // disable_hostname = false: gauges are named <prefix>.<hostname>.<name>, as go-metrics does
  // ("" for the plain name).
  std::string gauge_hostname;
};

// A prefix_filter rule's syntax: '+' or '-' and a non-empty name prefix.
bool ValidFilterRule(std::string_view rule);

// Whether the filter lets the full dotted `name` through.
bool Allowed(std::string_view name, const RenderOptions& options);

// `snapshot` with full names, filters, host label and cardinality applied.
Snapshot Render(Snapshot snapshot, const RenderOptions& options);

// A dotted name as a Prometheus metric name: every character outside [a-zA-Z0-9_:] becomes '_'
// ("vault.core.handle_request" -> "vault_core_handle_request"), and a leading digit gets a '_'.
std::string PrometheusName(std::string_view dotted);
// A label value in the text format: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value);
// A HELP text: backslash and newline escaped.
std::string EscapeHelp(std::string_view help);
// A sample value: the shortest text that reads back as the same double; "NaN", "+Inf", "-Inf".
std::string FormatValue(double v);

// The text exposition format 0.0.4 of a rendered snapshot: for each family "# HELP" and
// "# TYPE" lines, then its samples; a histogram's buckets cumulative with le="+Inf" equal to
// _count, then _sum and _count. Counters keep their name (no "_total" is added, as Vault's).
std::string PrometheusText(const Snapshot& rendered);

}  // namespace strongroom::metrics
