#include "base/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

#include "base/log.h"

namespace strongroom::metrics {
namespace {

// Each thread adds to one shard of a counter, picked once per thread.
size_t ShardIndex(size_t shards) {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % shards;
}

void AtomicAdd(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

void AtomicMin(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void AtomicMax(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

[[noreturn]] void Misuse(std::string_view what, std::string_view name) {
  LogError("metrics: %s: \"%s\"", std::string(what), std::string(name));
  std::abort();
}

bool NameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

// ---------------------------------------------------------------------------------------------

void Counter::Add(uint64_t n) noexcept {
  Shard& s = shards_[ShardIndex(kShards)];
  s.sum.fetch_add(n, std::memory_order_relaxed);
  s.calls.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Counter::Value() const noexcept {
  uint64_t total = 0;
  for (const Shard& s : shards_) total += s.sum.load(std::memory_order_relaxed);
  return total;
}

uint64_t Counter::Calls() const noexcept {
  uint64_t total = 0;
  for (const Shard& s : shards_) total += s.calls.load(std::memory_order_relaxed);
  return total;
}

void Gauge::Add(double delta) noexcept { AtomicAdd(value_, delta); }

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds),
      buckets_(new std::atomic<uint64_t>[bounds.size() + 1]),
      min_(std::numeric_limits<double>::infinity()),
      max_(-std::numeric_limits<double>::infinity()) {
  for (size_t i = 0; i <= bounds.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) noexcept {
  if (std::isnan(v)) return;
  // The first bound at or above v (a value on a bound belongs to it: `le`).
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
  AtomicAdd(sum_squares_, v * v);
  AtomicMin(min_, v);
  AtomicMax(max_, v);
}

void Histogram::ObserveSince(std::chrono::steady_clock::time_point start) noexcept {
  const auto elapsed = std::chrono::steady_clock::now() - start;
  Observe(std::chrono::duration<double, std::milli>(elapsed).count());
}

Histogram::Data Histogram::Read() const {
  Data d;
  d.buckets.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    d.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    d.count += d.buckets[i];
  }
  d.sum = sum_.load(std::memory_order_relaxed);
  d.sum_squares = sum_squares_.load(std::memory_order_relaxed);
  if (d.count > 0) {
    d.min = min_.load(std::memory_order_relaxed);
    d.max = max_.load(std::memory_order_relaxed);
    // An observation counted in its bucket may not have reached min/max yet.
    if (!std::isfinite(d.min) || !std::isfinite(d.max)) d.min = d.max = 0;
  }
  return d;
}

// ---------------------------------------------------------------------------------------------

template <class M>
template <class Make>
Family<M>::Family(std::string name, std::string help, std::vector<LabelDimension> dims, Make make)
    : name_(std::move(name)), help_(std::move(help)), dims_(std::move(dims)) {
  size_t n = 1;
  for (const LabelDimension& d : dims_) n *= d.values.size();
  series_.reserve(n);
  for (size_t i = 0; i < n; ++i) series_.push_back(make());
}

template <class M>
Labels Family<M>::LabelsOf(size_t flat) const {
  Labels out(dims_.size());
  for (size_t k = dims_.size(); k-- > 0;) {
    const size_t n = dims_[k].values.size();
    out[k] = {dims_[k].name, dims_[k].values[flat % n]};
    flat /= n;
  }
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---------------------------------------------------------------------------------------------

void Collection::Gauge(std::string_view name, std::string_view help, double value, Labels labels) {
  Add(Kind::kGauge, name, help, value, std::move(labels));
}

void Collection::Counter(std::string_view name, std::string_view help, double value,
                         Labels labels) {
  Add(Kind::kCounter, name, help, value, std::move(labels));
}

void Collection::Add(Kind kind, std::string_view name, std::string_view help, double value,
                     Labels labels) {
  if (!ValidMetricName(name)) Misuse("invalid metric name from a collector", name);
  for (const auto& [label, v] : labels) {
    if (!ValidLabelName(label)) Misuse("invalid label name from a collector", label);
  }
  if (total_ >= kMaxCollectedSeries) {
    ++dropped_;
    return;
  }
  ++total_;
  auto it = std::find_if(families_.begin(), families_.end(),
                         [&](const FamilySnapshot& f) { return f.name == name; });
  if (it == families_.end()) {
    FamilySnapshot f;
    f.name = std::string(name);
    f.help = std::string(help);
    f.kind = kind;
    families_.push_back(std::move(f));
    it = families_.end() - 1;
  } else if (it->kind != kind) {
    Misuse("a collector reports a metric as two kinds", name);
  }
  Series s;
  s.labels = std::move(labels);
  s.value = value;
  s.calls = value > 0 ? static_cast<uint64_t>(value) : 0;
  it->series.push_back(std::move(s));
}

// ---------------------------------------------------------------------------------------------

CollectorHandle::CollectorHandle(CollectorHandle&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), id_(std::exchange(other.id_, 0)) {}

CollectorHandle& CollectorHandle::operator=(CollectorHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

CollectorHandle::~CollectorHandle() { Reset(); }

void CollectorHandle::Reset() {
  if (registry_ != nullptr) registry_->RemoveCollector(id_);
  registry_ = nullptr;
  id_ = 0;
}

// ---------------------------------------------------------------------------------------------

bool ValidMetricName(std::string_view name) {
  if (name.empty() || name.size() > 200 || !NameStart(name.front())) return false;
  bool component_start = true;
  for (char c : name) {
    if (c == '.') {
      if (component_start) return false;  // empty component
      component_start = true;
      continue;
    }
    if (!NameChar(c) && c != ':') return false;
    component_start = false;
  }
  return !component_start;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.size() > 100 || !NameStart(name.front())) return false;
  if (name.starts_with("__") || name == "le" || name == "quantile") return false;
  return std::all_of(name.begin(), name.end(), NameChar);
}

void Registry::CheckNewName(const std::string& name, const std::vector<LabelDimension>& dims) {
  if (!ValidMetricName(name)) Misuse("invalid metric name", name);
  size_t series = 1;
  for (const LabelDimension& d : dims) {
    if (!ValidLabelName(d.name)) Misuse("invalid label name", d.name);
    if (d.values.empty()) Misuse("a label without values", d.name);
    series *= d.values.size();
    if (series > 100000) Misuse("a family with too many series", name);
    for (size_t i = 0; i < dims.size(); ++i) {
      if (&dims[i] != &d && dims[i].name == d.name) Misuse("a repeated label", d.name);
    }
  }
  auto taken = [&](const auto& families) {
    return std::any_of(families.begin(), families.end(),
                       [&](const auto& f) { return f->name() == name; });
  };
  if (taken(counters_) || taken(gauges_) || taken(histograms_)) {
    Misuse("a metric registered twice", name);
  }
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<LabelDimension> dims) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, dims);
  counters_.push_back(std::unique_ptr<Family<metrics::Counter>>(
      new Family<metrics::Counter>(std::move(name), std::move(help), std::move(dims),
                                   [] { return std::make_unique<metrics::Counter>(); })));
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<LabelDimension> dims) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, dims);
  gauges_.push_back(std::unique_ptr<Family<metrics::Gauge>>(
      new Family<metrics::Gauge>(std::move(name), std::move(help), std::move(dims),
                                 [] { return std::make_unique<metrics::Gauge>(); })));
  return *gauges_.back();
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<double> bounds,
                                          std::vector<LabelDimension> dims) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, dims);
  if (bounds.empty() || bounds.size() > 64) Misuse("a histogram needs 1 to 64 bounds", name);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse("histogram bounds must be finite and increasing", name);
    }
  }
  bounds_.push_back(std::make_unique<std::vector<double>>(std::move(bounds)));
  const std::span<const double> kept(*bounds_.back());
  histograms_.push_back(std::unique_ptr<Family<metrics::Histogram>>(new Family<metrics::Histogram>(
      std::move(name), std::move(help), std::move(dims),
      [kept] { return std::make_unique<metrics::Histogram>(kept); })));
  return *histograms_.back();
}

CollectorHandle Registry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_collector_++;
  collectors_.emplace_back(id, std::move(collector));
  return CollectorHandle(this, id);
}

void Registry::RemoveCollector(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(collectors_, [id](const auto& c) { return c.first == id; });
}

Snapshot Registry::Collect(absl::Time now) const {
  Snapshot snap;
  snap.time = now;
  snap.since = created_;
  std::map<std::string, FamilySnapshot> by_name;
  std::lock_guard<std::mutex> lock(mu_);
  // A labelled family shows the series that were ever updated; one without labels always shows.
  for (const auto& f : counters_) {
    FamilySnapshot& out = by_name[f->name()];
    out.name = f->name();
    out.help = f->help();
    out.kind = Kind::kCounter;
    for (size_t i = 0; i < f->size(); ++i) {
      const uint64_t calls = f->series(i).Calls();
      if (calls == 0 && !f->dims().empty()) continue;
      Series s;
      s.labels = f->LabelsOf(i);
      s.value = static_cast<double>(f->series(i).Value());
      s.calls = calls;
      out.series.push_back(std::move(s));
    }
  }
  for (const auto& f : gauges_) {
    FamilySnapshot& out = by_name[f->name()];
    out.name = f->name();
    out.help = f->help();
    out.kind = Kind::kGauge;
    for (size_t i = 0; i < f->size(); ++i) {
      Series s;
      s.labels = f->LabelsOf(i);
      s.value = f->series(i).Value();
      out.series.push_back(std::move(s));
    }
  }
  for (const auto& f : histograms_) {
    FamilySnapshot& out = by_name[f->name()];
    out.name = f->name();
    out.help = f->help();
    out.kind = Kind::kHistogram;
    out.bounds.assign(f->Only().bounds().begin(), f->Only().bounds().end());
    for (size_t i = 0; i < f->size(); ++i) {
      Histogram::Data d = f->series(i).Read();
      if (d.count == 0 && !f->dims().empty()) continue;
      Series s;
      s.labels = f->LabelsOf(i);
      s.histogram = std::move(d);
      out.series.push_back(std::move(s));
    }
  }
  for (const auto& [id, collect] : collectors_) {
    Collection c;
    collect(c);
    if (c.Dropped() > 0) {
      LogWarn("metrics: a collector reported more than %d series; %d dropped",
              static_cast<int>(Collection::kMaxCollectedSeries), static_cast<int>(c.Dropped()));
    }
    for (FamilySnapshot& f : c.families_) {
      auto it = by_name.find(f.name);
      if (it == by_name.end()) {
        by_name.emplace(f.name, std::move(f));
      } else if (it->second.kind == f.kind && it->second.kind != Kind::kHistogram) {
        for (Series& s : f.series) it->second.series.push_back(std::move(s));
      } else {
        LogWarn("metrics: a collector reports %s as another kind; ignored", f.name);
      }
    }
  }
  for (auto& [name, f] : by_name) snap.families.push_back(std::move(f));
  return snap;
}

std::vector<double> LatencyBucketsMs() {
  return {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
}

}  // namespace strongroom::metrics
