// The metrics registry (base/metrics.h), the rendering the telemetry stanza controls and the
// Prometheus text exposition format 0.0.4 (base/metrics_text.h).
#include "base/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "absl/strings/str_split.h"
#include "base/metrics_catalog.h"
#include "base/metrics_text.h"

namespace strongroom::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

const FamilySnapshot* Find(const Snapshot& s, std::string_view name) {
  for (const FamilySnapshot& f : s.families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(MetricsTest, CounterSumsAllThreads) {
  Registry r;
  Counter& c = r.AddCounter("test.count", "a counter").Only();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) c.Add(2);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 160000u);
  EXPECT_EQ(c.Calls(), 80000u);
}

TEST(MetricsTest, HistogramBucketsAndStatistics) {
  const std::vector<double> bounds = {1, 5, 10};
  Histogram h(bounds);
  for (double v : {0.5, 1.0, 3.0, 5.0, 7.0, 100.0, std::nan("")}) h.Observe(v);
  Histogram::Data d = h.Read();
  // A value on a bound is in that bound's bucket (le); NaN is not counted.
  EXPECT_THAT(d.buckets, ElementsAre(2u, 2u, 1u, 1u));
  EXPECT_EQ(d.count, 6u);
  EXPECT_DOUBLE_EQ(d.sum, 116.5);
  EXPECT_DOUBLE_EQ(d.sum_squares, 0.25 + 1 + 9 + 25 + 49 + 10000);
  EXPECT_DOUBLE_EQ(d.min, 0.5);
  EXPECT_DOUBLE_EQ(d.max, 100);
  Histogram empty(bounds);
  EXPECT_EQ(empty.Read().count, 0u);
  EXPECT_EQ(empty.Read().min, 0);
}

TEST(MetricsTest, LabelledFamiliesShowOnlyTouchedSeries) {
  Registry r;
  auto& f = r.AddCounter("test.requests", "requests",
                         {{"route", {"sys", "kv", "other"}}, {"code", {"200", "404"}}});
  f.At({1, 0}).Add();
  f.At({1, 0}).Add();
  f.At({0, 1}).Add();
  // Out of range selects the last value (the catch-all).
  f.At({7, 0}).Add();
  EXPECT_EQ(f.Find(0, "kv"), 1u);
  EXPECT_EQ(f.Find(0, "nope"), kNoIndex);
  EXPECT_EQ(f.Find(0, "nope", 2), 2u);
  r.AddCounter("test.unlabelled", "never touched");
  Snapshot s = r.Collect();
  const FamilySnapshot* req = Find(s, "test.requests");
  ASSERT_NE(req, nullptr);
  ASSERT_EQ(req->series.size(), 3u);
  EXPECT_THAT(req->series[0].labels, ElementsAre(Pair("route", "sys"), Pair("code", "404")));
  EXPECT_THAT(req->series[1].labels, ElementsAre(Pair("route", "kv"), Pair("code", "200")));
  EXPECT_EQ(req->series[1].value, 2);
  EXPECT_THAT(req->series[2].labels, ElementsAre(Pair("route", "other"), Pair("code", "200")));
  // A family without labels is always there, at zero before its first update.
  const FamilySnapshot* un = Find(s, "test.unlabelled");
  ASSERT_NE(un, nullptr);
  ASSERT_EQ(un->series.size(), 1u);
  EXPECT_EQ(un->series[0].value, 0);
}

TEST(MetricsTest, CollectorsRunAtEachScrapeUntilTheirHandleGoes) {
  Registry r;
  int runs = 0;
  {
    CollectorHandle h = r.AddCollector([&runs](Collection& c) {
      ++runs;
      c.Gauge("test.sealed", "seal state", 1);
      c.Gauge("test.peer", "per peer", 3, {{"peer_id", "a\"b"}});
      c.Gauge("test.peer", "per peer", 4, {{"peer_id", "c"}});
      c.Counter("test.restarts", "restarts", 5);
    });
    Snapshot s = r.Collect();
    EXPECT_EQ(runs, 1);
    const FamilySnapshot* peer = Find(s, "test.peer");
    ASSERT_NE(peer, nullptr);
    EXPECT_EQ(peer->kind, Kind::kGauge);
    EXPECT_EQ(peer->series.size(), 2u);
    ASSERT_NE(Find(s, "test.restarts"), nullptr);
    EXPECT_EQ(Find(s, "test.restarts")->kind, Kind::kCounter);
    EXPECT_EQ(Find(s, "test.restarts")->series[0].calls, 5u);
    // Sorted by name.
    for (size_t i = 1; i < s.families.size(); ++i) {
      EXPECT_LT(s.families[i - 1].name, s.families[i].name);
    }
  }
  Snapshot after = r.Collect();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Find(after, "test.sealed"), nullptr);
}

TEST(MetricsTest, CollectionIsBounded) {
  Registry r;
  CollectorHandle h = r.AddCollector([](Collection& c) {
    for (size_t i = 0; i < Collection::kMaxCollectedSeries + 50; ++i) {
      c.Gauge("test.many", "many", 1, {{"i", std::to_string(i)}});
    }
    EXPECT_EQ(c.Dropped(), 50u);
  });
  Snapshot s = r.Collect();
  ASSERT_NE(Find(s, "test.many"), nullptr);
  EXPECT_EQ(Find(s, "test.many")->series.size(), Collection::kMaxCollectedSeries);
}

TEST(MetricsTest, NamesAreChecked) {
  EXPECT_TRUE(ValidMetricName("core.handle_request"));
  EXPECT_TRUE(ValidMetricName("raft.leader.lastContact"));
  for (const char* bad : {"", ".a", "a.", "a..b", "1a", "a-b", "a b", "a{b"}) {
    EXPECT_FALSE(ValidMetricName(bad)) << bad;
  }
  EXPECT_TRUE(ValidLabelName("peer_id"));
  for (const char* bad : {"", "__name", "le", "quantile", "a-b", "1a"}) {
    EXPECT_FALSE(ValidLabelName(bad)) << bad;
  }
  Registry r;
  r.AddCounter("test.once", "once");
  EXPECT_DEATH(r.AddGauge("test.once", "twice"), "registered twice");
  EXPECT_DEATH(r.AddCounter("bad name", "x"), "invalid metric name");
  EXPECT_DEATH(r.AddHistogram("test.h", "x", {2, 1}), "increasing");
}

TEST(MetricsTextTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeHelp("one\\two\nthree \"quoted\""), "one\\\\two\\nthree \"quoted\"");
  EXPECT_EQ(PrometheusName("vault.core.handle_request"), "vault_core_handle_request");
  EXPECT_EQ(PrometheusName("vault.my-host.core.unsealed"), "vault_my_host_core_unsealed");
  EXPECT_EQ(PrometheusName("1x"), "_1x");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(30000), "30000");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTextTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("test.latency", "latency", {1, 10}, {{"route", {"kv", "sys"}}});
  h.At({0}).Observe(0.5);
  h.At({0}).Observe(5);
  h.At({0}).Observe(50);
  h.At({1}).Observe(2);
  CollectorHandle c = r.AddCollector([](Collection& col) {
    col.Gauge("test.peer_contact", "ms since contact", 12.5, {{"peer_id", "node \"2\"\\x\n"}});
  });
  RenderOptions o;
  const std::string text = PrometheusText(Render(r.Collect(), o));
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  EXPECT_THAT(lines, testing::IsSupersetOf({
                         "# HELP vault_test_latency latency",
                         "# TYPE vault_test_latency histogram",
                         "vault_test_latency_bucket{route=\"kv\",le=\"1\"} 1",
                         "vault_test_latency_bucket{route=\"kv\",le=\"10\"} 2",
                         "vault_test_latency_bucket{route=\"kv\",le=\"+Inf\"} 3",
                         "vault_test_latency_sum{route=\"kv\"} 55.5",
                         "vault_test_latency_count{route=\"kv\"} 3",
                         "vault_test_latency_bucket{route=\"sys\",le=\"1\"} 0",
                         "vault_test_latency_bucket{route=\"sys\",le=\"10\"} 1",
                         "vault_test_latency_bucket{route=\"sys\",le=\"+Inf\"} 1",
                         "vault_test_latency_count{route=\"sys\"} 1",
                         "# TYPE vault_test_peer_contact gauge",
                         "vault_test_peer_contact{peer_id=\"node \\\"2\\\"\\\\x\\n\"} 12.5",
                     }));
  // HELP and TYPE come before the family's samples, once per family.
  size_t type_at = text.find("# TYPE vault_test_latency histogram");
  EXPECT_LT(type_at, text.find("vault_test_latency_bucket"));
  EXPECT_EQ(text.find("# TYPE vault_test_latency", type_at + 1), std::string::npos);
}

TEST(MetricsTextTest, TelemetryStanzaShapesTheOutput) {
  Registry r;
  r.AddCounter("token.count", "tokens").Only().Add(3);
  r.AddCounter("expire.num_leases", "leases").Only().Add(1);
  r.AddCounter("expire.num_irrevocable_leases", "irrevocable").Only().Add(1);
  r.AddGauge("core.unsealed", "unsealed").Only().Set(1);
  r.AddCounter("test.tie", "allowed and blocked by the same prefix").Only().Add();
  CollectorHandle c = r.AddCollector([](Collection& col) {
    for (int i = 0; i < 10; ++i) col.Gauge("test.peers", "p", i, {{"peer_id", std::to_string(i)}});
  });
  RenderOptions o;
  o.prefix = "sr";
  o.prefix_filter = {"-sr.expire", "+sr.expire.num_leases", "+sr.test", "-sr.test"};
  o.max_gauge_cardinality = 4;
  o.host_label = "node-1";
  o.gauge_hostname = "node-1";
  Snapshot s = Render(r.Collect(), o);
  EXPECT_NE(Find(s, "sr.token.count"), nullptr);
  EXPECT_NE(Find(s, "sr.expire.num_leases"), nullptr);              // the longer rule allows it
  EXPECT_EQ(Find(s, "sr.expire.num_irrevocable_leases"), nullptr);  // the shorter one blocks
  EXPECT_EQ(Find(s, "sr.test.tie"), nullptr);           // allowed and blocked alike: blocked
  EXPECT_NE(Find(s, "sr.node-1.test.peers"), nullptr);  // no rule matches it: filter_default
  EXPECT_EQ(Find(s, "sr.node-1.test.peers")->series.size(), 4u);  // maximum_gauge_cardinality
  const FamilySnapshot* unsealed = Find(s, "sr.node-1.core.unsealed");
  ASSERT_NE(unsealed, nullptr);  // gauges carry the host name (disable_hostname = false)
  EXPECT_THAT(unsealed->series[0].labels, ElementsAre(Pair("host", "node-1")));

  Snapshot plain = Render(r.Collect(), RenderOptions{});
  ASSERT_NE(Find(plain, "vault.test.peers"), nullptr);
  EXPECT_EQ(Find(plain, "vault.test.peers")->series.size(), 10u);
  EXPECT_THAT(Find(plain, "vault.core.unsealed")->series[0].labels, testing::IsEmpty());

  RenderOptions none;
  none.filter_default = false;
  EXPECT_TRUE(Render(r.Collect(), none).families.empty());
  none.prefix_filter = {"+vault.token"};
  Snapshot only = Render(r.Collect(), none);
  ASSERT_EQ(only.families.size(), 1u);
  EXPECT_EQ(only.families[0].name, "vault.token.count");
  EXPECT_THAT(PrometheusText(only), Not(HasSubstr("expire")));
}

TEST(MetricsCatalogTest, StatusCodesAndClasses) {
  EXPECT_EQ(kStatusCodes[StatusIndex(404)], "404");
  EXPECT_EQ(kStatusCodes[StatusIndex(299)], "other");
  EXPECT_EQ(kStatusCodes[StatusIndex(12345678)], "other");
  EXPECT_EQ(StatusClass(503), "5xx");
  EXPECT_EQ(StatusClass(99), "other");
  EXPECT_EQ(StatusClassIndex(204), 1u);
  EXPECT_EQ(IndexIn(kRouteClasses, "kv"), 6u);
  EXPECT_EQ(kRouteClasses[IndexIn(kRouteClasses, "auth/ldap")], "other");
  // The catalog registers once, in the default registry, and renders.
  Get().handle_request.At({IndexIn(kRouteClasses, "kv"), StatusIndex(200)}).Observe(1.5);
  const std::string text = PrometheusText(Render(DefaultRegistry().Collect(), RenderOptions{}));
  EXPECT_THAT(text, HasSubstr("vault_core_handle_request_count{route=\"kv\",code=\"200\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE vault_audit_records counter\nvault_audit_records 0\n"));
}

}  // namespace
}  // namespace strongroom::metrics
