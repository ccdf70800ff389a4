// sys/metrics (Vault API: /sys/metrics): the JSON form's shape (go-metrics' summary) and the
// format parameter's answers (engines/sys_metrics.h).
#include "appliance/engines/sys_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "base/metrics_text.h"

namespace strongroom::engines {
namespace {

using core::json::object;

const object* FindEntry(const object& o, const char* section, std::string_view name) {
  for (const auto& v : o.at(section).as_array()) {
    if (v.as_object().at("Name").as_string() == name) return &v.as_object();
  }
  return nullptr;
}

TEST(SysMetrics, JsonFormIsGoMetricsSummary) {
  metrics::Registry r;
  auto& c = r.AddCounter("test.bytes", "bytes", {{"kind", {"a", "b"}}});
  c.At({0}).Add(10);
  c.At({0}).Add(30);
  auto& h = r.AddHistogram("test.latency", "latency", {1, 10});
  for (double v : {2.0, 4.0, 6.0}) h.Only().Observe(v);
  r.AddGauge("test.level", "level").Only().Set(2.5);
  const absl::Time start = absl::FromUnixSeconds(1700000000);
  metrics::Snapshot s = r.Collect(start + absl::Seconds(27));
  s.since = start;  // as if the registry were made then: 27 s ago
  const object o = MetricsJson(metrics::Render(std::move(s), metrics::RenderOptions{}));

  // The interval start (10 s), Go's time.Time String() in UTC.
  EXPECT_EQ(o.at("Timestamp").as_string(), "2023-11-14 22:13:40 +0000 UTC");
  EXPECT_TRUE(o.at("Points").as_array().empty());
  const object* gauge = FindEntry(o, "Gauges", "vault.test.level");
  ASSERT_NE(gauge, nullptr);
  EXPECT_EQ(gauge->at("Value").to_number<double>(), 2.5);
  EXPECT_TRUE(gauge->at("Labels").as_object().empty());

  const object* counter = FindEntry(o, "Counters", "vault.test.bytes");
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->at("Count").to_number<double>(), 2);  // two additions
  EXPECT_EQ(counter->at("Sum").to_number<double>(), 40);
  EXPECT_EQ(counter->at("Mean").to_number<double>(), 20);
  EXPECT_NEAR(counter->at("Rate").to_number<double>(), 40.0 / 27, 1e-9);
  EXPECT_EQ(counter->at("Labels").as_object().at("kind").as_string(), "a");
  EXPECT_EQ(o.at("Counters").as_array().size(), 1u);  // kind="b" was never updated

  const object* sample = FindEntry(o, "Samples", "vault.test.latency");
  ASSERT_NE(sample, nullptr);
  EXPECT_EQ(sample->at("Count").to_number<double>(), 3);
  EXPECT_EQ(sample->at("Sum").to_number<double>(), 12);
  EXPECT_EQ(sample->at("Min").to_number<double>(), 2);
  EXPECT_EQ(sample->at("Max").to_number<double>(), 6);
  EXPECT_EQ(sample->at("Mean").to_number<double>(), 4);
  EXPECT_NEAR(sample->at("Stddev").to_number<double>(), 2.0, 1e-9);  // sample stddev of 2,4,6
  for (const char* key :
       {"Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"}) {
    EXPECT_TRUE(sample->contains(key)) << key;
  }
}

TEST(SysMetrics, FormatParameter) {
  core::TelemetryOptions t;
  object q;
  auto json = MetricsResponse(t, q);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->kind, core::Response::Kind::kRaw);
  EXPECT_TRUE(json->content_type.empty());  // JSON, the raw body
  ASSERT_TRUE(json->data.has_value());
  EXPECT_TRUE(json->data->contains("Gauges"));

  q["format"] = "prometheus";
  auto text = MetricsResponse(t, q);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->content_type, "text/plain; version=0.0.4; charset=utf-8");
  // The whole catalog, before any update (a labelled family shows once a series is used).
  EXPECT_THAT(text->body,
              testing::HasSubstr("# TYPE vault_audit_records counter\nvault_audit_records 0\n"));
  EXPECT_THAT(text->body, testing::Not(testing::HasSubstr("vault_core_handle_request")));

  t.prometheus_enabled = false;  // prometheus_retention_time = 0
  auto off = MetricsResponse(t, q);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->http_status, 400);
  EXPECT_EQ(off->content_type, "text/plain");
  EXPECT_EQ(off->body, "prometheus is not enabled");

  q["format"] = "yaml";
  auto unknown = MetricsResponse(t, q);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->http_status, 400);
  EXPECT_EQ(unknown->body, "metric response format \"yaml\" unknown");

  q["format"] = core::json::array{"a", "b"};
  EXPECT_EQ(MetricsResponse(t, q).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strongroom::engines
