#include "base/metrics_text.h"

#include <charconv>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::metrics {
namespace {

std::string FullName(std::string_view name, const RenderOptions& o, bool gauge) {
  std::string out;
  if (!o.prefix.empty()) absl::StrAppend(&out, o.prefix, ".");
  if (gauge && !o.gauge_hostname.empty()) absl::StrAppend(&out, o.gauge_hostname, ".");
  out.append(name);
  return out;
}

// A label set in the text format: {a="x",b="y"}; "" when empty. `le` (a bucket's bound) last.
std::string LabelText(const Labels& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&out, first ? "" : ",", name, "=\"", EscapeLabelValue(value), "\"");
    first = false;
  }
  if (!le.empty()) absl::StrAppend(&out, first ? "" : ",", "le=\"", Av(le), "\"");
  out += "}";
  return out;
}

}  // namespace

bool ValidFilterRule(std::string_view rule) {
  return rule.size() >= 2 && (rule[0] == '+' || rule[0] == '-');
}

bool Allowed(std::string_view name, const RenderOptions& o) {
  size_t best = 0;
  bool found = false, allow = o.filter_default;
  for (const std::string& rule : o.prefix_filter) {
    if (!ValidFilterRule(rule)) continue;
    const std::string_view prefix = std::string_view(rule).substr(1);
    if (!name.starts_with(prefix)) continue;
    const bool block = rule[0] == '-';
    if (!found || prefix.size() > best) {
      best = prefix.size();
      found = true;
      allow = !block;
    } else if (prefix.size() == best && block) {
      allow = false;  // the same prefix allowed and blocked: blocked
    }
  }
  return allow;
}

Snapshot Render(Snapshot snapshot, const RenderOptions& o) {
  Snapshot out;
  out.time = snapshot.time;
  out.since = snapshot.since;
  std::map<std::string, FamilySnapshot> by_name;
  for (FamilySnapshot& f : snapshot.families) {
    f.name = FullName(f.name, o, f.kind == Kind::kGauge);
    if (!Allowed(f.name, o)) continue;
    if (f.kind == Kind::kGauge && f.series.size() > o.max_gauge_cardinality) {
      f.series.resize(o.max_gauge_cardinality);
    }
    if (!o.host_label.empty()) {
      for (Series& s : f.series) {
        std::erase_if(s.labels, [](const auto& l) { return l.first == "host"; });
        s.labels.emplace_back("host", o.host_label);
      }
    }
    std::string key = f.name;
    by_name.emplace(std::move(key), std::move(f));
  }
  for (auto& [name, f] : by_name) out.families.push_back(std::move(f));
  return out;
}

std::string PrometheusName(std::string_view dotted) {
  std::string out;
  out.reserve(dotted.size() + 1);
  if (!dotted.empty() && dotted.front() >= '0' && dotted.front() <= '9') out.push_back('_');
  for (char c : dotted) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == ':';
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";  // cannot happen for a finite double in 64 bytes
  return std::string(buf, end);
}

std::string PrometheusText(const Snapshot& rendered) {
  std::string out;
  for (const FamilySnapshot& f : rendered.families) {
    if (f.series.empty()) continue;
    const std::string name = PrometheusName(f.name);
    const char* type = f.kind == Kind::kCounter ? "counter"
                       : f.kind == Kind::kGauge ? "gauge"
                                                : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(f.help.empty() ? f.name : f.help),
                    "\n# TYPE ", name, " ", type, "\n");
    for (const Series& s : f.series) {
      if (f.kind != Kind::kHistogram) {
        absl::StrAppend(&out, name, LabelText(s.labels), " ", FormatValue(s.value), "\n");
        continue;
      }
      const Histogram::Data& h = s.histogram;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.bounds.size() && i < h.buckets.size(); ++i) {
        cumulative += h.buckets[i];
        absl::StrAppend(&out, name, "_bucket", LabelText(s.labels, FormatValue(f.bounds[i])), " ",
                        cumulative, "\n");
      }
      absl::StrAppend(&out, name, "_bucket", LabelText(s.labels, "+Inf"), " ", h.count, "\n");
      absl::StrAppend(&out, name, "_sum", LabelText(s.labels), " ", FormatValue(h.sum), "\n");
      absl::StrAppend(&out, name, "_count", LabelText(s.labels), " ", h.count, "\n");
    }
  }
  return out;
}

}  // namespace strongroom::metrics
