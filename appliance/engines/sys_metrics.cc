#include "appliance/engines/sys_metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/metrics_catalog.h"
#include "base/metrics_text.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::json::array;
using core::json::object;

constexpr char kErrorContentType[] = "text/plain";

object LabelsJson(const metrics::Labels& labels) {
  object o;
  for (const auto& [name, value] : labels) o[name] = value;
  return o;
}

// go-metrics' Stddev: sqrt((n * sum_sq - sum^2) / (n * (n - 1))); 0 below two observations.
double Stddev(uint64_t n, double sum, double sum_squares) {
  if (n < 2) return 0;
  const double dn = static_cast<double>(n);
  const double num = dn * sum_squares - sum * sum;
  return num <= 0 ? 0 : std::sqrt(num / (dn * (dn - 1)));
}

// A double JSON can carry (JSON has no NaN or infinity).
double Finite(double v) { return std::isfinite(v) ? v : 0; }

}  // namespace

object MetricsJson(const metrics::Snapshot& s) {
  const double seconds = std::max(1.0, absl::ToDoubleSeconds(s.time - s.since));
  array gauges, counters, samples;
  for (const metrics::FamilySnapshot& f : s.families) {
    for (const metrics::Series& series : f.series) {
      object o;
      o["Name"] = f.name;
      if (f.kind == metrics::Kind::kGauge) {
        o["Value"] = Finite(series.value);
        o["Labels"] = LabelsJson(series.labels);
        gauges.push_back(std::move(o));
        continue;
      }
      uint64_t count = 0;
      double sum = 0, min = 0, max = 0, sum_squares = 0;
      if (f.kind == metrics::Kind::kCounter) {
        count = series.calls;
        sum = series.value;
        min = max = count > 0 ? sum / static_cast<double>(count) : 0;
        sum_squares = count > 0 ? min * min * static_cast<double>(count) : 0;
      } else {
        count = series.histogram.count;
        sum = series.histogram.sum;
        min = series.histogram.min;
        max = series.histogram.max;
        sum_squares = series.histogram.sum_squares;
      }
      o["Count"] = count;
      o["Rate"] = Finite(sum / seconds);
      o["Sum"] = Finite(sum);
      o["Min"] = Finite(min);
      o["Max"] = Finite(max);
      o["Mean"] = count > 0 ? Finite(sum / static_cast<double>(count)) : 0.0;
      o["Stddev"] = Finite(Stddev(count, sum, sum_squares));
      o["Labels"] = LabelsJson(series.labels);
      (f.kind == metrics::Kind::kCounter ? counters : samples).push_back(std::move(o));
    }
  }
  object out;
  // go-metrics: the start of the 10-second interval, rounded to the second, UTC, in Go's
  // time.Time String() form.
  const absl::Time interval = absl::FromUnixSeconds(absl::ToUnixSeconds(s.time) / 10 * 10);
  out["Timestamp"] = absl::FormatTime("%Y-%m-%d %H:%M:%S +0000 UTC", interval, absl::UTCTimeZone());
  out["Gauges"] = std::move(gauges);
  out["Points"] = array();
  out["Counters"] = std::move(counters);
  out["Samples"] = std::move(samples);
  return out;
}

absl::StatusOr<core::Response> MetricsResponse(const core::TelemetryOptions& telemetry,
                                               const core::json::object& query) {
  ASSIGN_OR_RETURN(std::optional<std::string> format, core::GetString(query, "format"));
  const std::string f = format.value_or("");
  if (f != "" && f != "prometheus") {
    return core::Response::RawText(
        kErrorContentType, absl::StrCat("metric response format \"", f.substr(0, 64), "\" unknown"),
        400);
  }
  if (f == "prometheus" && !telemetry.prometheus_enabled) {
    return core::Response::RawText(kErrorContentType, "prometheus is not enabled", 400);
  }
  const metrics::Snapshot rendered =
      metrics::Render(metrics::DefaultRegistry().Collect(), telemetry.render);
  if (f == "prometheus") {
    return core::Response::RawText(std::string(metrics::kPrometheusContentType),
                                   metrics::PrometheusText(rendered));
  }
  return core::Response::Raw(MetricsJson(rendered));
}

}  // namespace strongroom::engines
