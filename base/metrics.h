// The process's metrics: counters, gauges and histograms that the hot path updates with relaxed
// atomics (no lock, no allocation), grouped into families whose label values are fixed when the
// family is registered, so a family's series are all allocated once and its cardinality is
// bounded by construction (no request, path or token can make a new series). What is cheaper
// to read when asked than to track (seal state, Raft indexes, pool sizes) comes from collectors,
// callbacks run at each scrape. Registry::Collect() takes a snapshot of both; metrics_text.h
// renders one (Prometheus text format, and the names and filters Vault's telemetry stanza sets);
// the system backend serves it at sys/metrics.
//
// Names are dotted, Vault style, without the service prefix ("core.handle_request"); the
// prefix ("vault", telemetry metrics_prefix) is added when a snapshot is rendered.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace strongroom::metrics {

enum class Kind { kCounter, kGauge, kHistogram };

// A monotonically increasing count, sharded over cache lines so that threads adding at once do
// not contend. Also counts its Add calls (Vault's JSON form reports both the sum and the count).
class Counter {
 public:
  void Add(uint64_t n = 1) noexcept;
  uint64_t Value() const noexcept;  // the sum of everything added
  uint64_t Calls() const noexcept;  // how many Add calls

 private:
  static constexpr size_t kShards = 8;
  struct alignas(64) Shard {
    std::atomic<uint64_t> sum{0};
    std::atomic<uint64_t> calls{0};
  };
  std::array<Shard, kShards> shards_{};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta) noexcept;
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations sorted into fixed buckets (upper bounds, inclusive, as Prometheus' `le`), with
// their sum, count, minimum, maximum and sum of squares (for Vault's Mean and Stddev). Each
// observation is a handful of relaxed atomic operations; a reader may see an observation in
// the buckets before it reaches the sum (never the reverse of a bucket and the count: the count
// is the sum of the buckets).
class Histogram {
 public:
  // `bounds`: finite and strictly increasing; must outlive the histogram (the family keeps it).
  explicit Histogram(std::span<const double> bounds);
  // NaN is ignored.
  void Observe(double v) noexcept;
  // Milliseconds since `start` (Vault's timers are milliseconds).
  void ObserveSince(std::chrono::steady_clock::time_point start) noexcept;

  struct Data {
    std::vector<uint64_t> buckets;  // per bucket, NOT cumulative; one more than the bounds (+Inf)
    uint64_t count = 0;             // the sum of `buckets`
    double sum = 0;
    double sum_squares = 0;
    double min = 0;  // 0 while count is 0
    double max = 0;
  };
  Data Read() const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
  std::atomic<double> sum_squares_{0};
  std::atomic<double> min_;
  std::atomic<double> max_;
};

// Times a scope into a histogram (milliseconds).
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() { h_.ObserveSince(start_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& h_;
  std::chrono::steady_clock::time_point start_;
};

// One label of a family: its name and every value it may take, fixed at registration.
struct LabelDimension {
  std::string name;
  std::vector<std::string> values;
};

inline constexpr size_t kNoIndex = static_cast<size_t>(-1);

// The series of one metric name: one per combination of label values (one series without
// labels), all allocated at registration.
template <class M>
class Family {
 public:
  // The series for the given value indexes, one per dimension in order; an index out of range
  // selects that dimension's last value (register a catch-all such as "other" last).
  M& At(std::initializer_list<size_t> index) noexcept {
    size_t flat = 0;
    auto it = index.begin();
    for (const LabelDimension& d : dims_) {
      size_t i = it != index.end() ? *it++ : 0;
      if (i >= d.values.size()) i = d.values.size() - 1;
      flat = flat * d.values.size() + i;
    }
    return *series_[flat];
  }
  // The one series of a family without labels.
  M& Only() noexcept { return *series_.front(); }
  // The index of `value` in dimension `dim`; `fallback` when it is not one of its values.
  size_t Find(size_t dim, std::string_view value, size_t fallback = kNoIndex) const noexcept {
    if (dim >= dims_.size()) return fallback;
    const auto& values = dims_[dim].values;
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i] == value) return i;
    }
    return fallback;
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<LabelDimension>& dims() const { return dims_; }
  size_t size() const { return series_.size(); }
  const M& series(size_t flat) const { return *series_[flat]; }
  // The label values of series `flat`.
  std::vector<std::pair<std::string, std::string>> LabelsOf(size_t flat) const;

 private:
  friend class Registry;
  template <class Make>
  Family(std::string name, std::string help, std::vector<LabelDimension> dims, Make make);

  std::string name_;
  std::string help_;
  std::vector<LabelDimension> dims_;
  std::vector<std::unique_ptr<M>> series_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// One series in a snapshot.
struct Series {
  Labels labels;
  double value = 0;    // counter and gauge
  uint64_t calls = 0;  // counter: its Add calls (a collector's counter: the value)
  Histogram::Data histogram;
};

struct FamilySnapshot {
  std::string name;  // dotted
  std::string help;
  Kind kind = Kind::kGauge;
  std::vector<double> bounds;  // histogram
  std::vector<Series> series;
};

struct Snapshot {
  absl::Time time;
  absl::Time since;  // when the registry was made: counts and sums run from then
  std::vector<FamilySnapshot> families;  // sorted by name
};

// What a collector adds to at a scrape. Bounded: past kMaxCollectedSeries in all, further
// series are dropped (and counted in Dropped()).
class Collection {
 public:
  static constexpr size_t kMaxCollectedSeries = 10000;

  void Gauge(std::string_view name, std::string_view help, double value, Labels labels = {});
  // A count kept elsewhere (e.g. by another process), reported as a counter.
  void Counter(std::string_view name, std::string_view help, double value, Labels labels = {});
  size_t Dropped() const { return dropped_; }

 private:
  friend class Registry;
  void Add(Kind kind, std::string_view name, std::string_view help, double value, Labels labels);
  std::vector<FamilySnapshot> families_;
  size_t total_ = 0;
  size_t dropped_ = 0;
};

using Collector = std::function<void(Collection&)>;

class Registry;

// Keeps a collector registered; unregisters it when destroyed (waiting for a scrape that is
// running it). Destroy it before whatever the collector reads.
class CollectorHandle {
 public:
  CollectorHandle() = default;
  CollectorHandle(CollectorHandle&& other) noexcept;
  CollectorHandle& operator=(CollectorHandle&& other) noexcept;
  CollectorHandle(const CollectorHandle&) = delete;
  CollectorHandle& operator=(const CollectorHandle&) = delete;
  ~CollectorHandle();
  void Reset();

 private:
  friend class Registry;
  CollectorHandle(Registry* registry, uint64_t id) : registry_(registry), id_(id) {}
  Registry* registry_ = nullptr;
  uint64_t id_ = 0;
};

// Registration happens once, at start-up, from code (never from input): an invalid or repeated
// name is a programming error and aborts. Updates and Collect() may run concurrently.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Family<metrics::Counter>& AddCounter(std::string name, std::string help,
                                       std::vector<LabelDimension> dims = {});
  Family<metrics::Gauge>& AddGauge(std::string name, std::string help,
                                   std::vector<LabelDimension> dims = {});
  Family<metrics::Histogram>& AddHistogram(std::string name, std::string help,
                                           std::vector<double> bounds,
                                           std::vector<LabelDimension> dims = {});
  CollectorHandle AddCollector(Collector collector);

  // Every registered family (a labelled family: only the series that were ever updated) and
  // every collector's series, merged by name and sorted by name.
  Snapshot Collect(absl::Time now = absl::Now()) const;

 private:
  friend class CollectorHandle;
  void RemoveCollector(uint64_t id);
  void CheckNewName(const std::string& name, const std::vector<LabelDimension>& dims);

  mutable std::mutex mu_;  // registration and the collector list; held while collectors run
  std::vector<std::unique_ptr<Family<metrics::Counter>>> counters_;
  std::vector<std::unique_ptr<Family<metrics::Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<metrics::Histogram>>> histograms_;
  std::vector<std::unique_ptr<std::vector<double>>> bounds_;  // the histograms' bounds
  std::vector<std::pair<uint64_t, Collector>> collectors_;
  uint64_t next_collector_ = 1;
  const absl::Time created_ = absl::Now();
};

// Names: dotted components of [A-Za-z0-9_:], each non-empty, the first starting with a letter
// or '_' ("core.handle_request"). Label names: [A-Za-z_][A-Za-z0-9_]*, not starting with "__",
// not "le" or "quantile" (Prometheus reserves them).
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

// The buckets of every latency histogram, in milliseconds.
std::vector<double> LatencyBucketsMs();

}  // namespace strongroom::metrics
