// snapshot_bench: what a Raft snapshot of a large store costs. Three bare RaftStorage nodes in
// this process (libraft, the TLS transport, RocksDB state machines on real disk) are filled to
// --store-mb of 64 KiB values; then one more snapshot is made due while small writes go on.
// Printed: the longest time any node's Raft loop was kept from running (heartbeats wait
// meanwhile) next to the heartbeat interval and the election timeout it must stay below, the
// elections that caused, and the process's peak memory growth meanwhile next to the store's size
// (resident, and anonymous: what the kernel cannot drop; file-backed buffers, spill.h, are not).
// Then a follower that lost its disk comes back empty and is sent the whole store in one
// InstallSnapshot: its time, and the peak anonymous memory growth meanwhile. Run it with
// STRONGROOM_RAFT_SPILL_BYTES=0 to compare with every buffer in memory.
// Not a test: run bench/run.sh, or build-bench/bench/snapshot_bench --store-mb=1024.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "appliance/raft/raft_storage.h"
#include "appliance/raft/spill.h"
#include "bench/bench_util.h"
#include "tests/support/cluster_support.h"

namespace {

using strongroom::raft::RaftStorage;
using Clock = std::chrono::steady_clock;

constexpr unsigned kThreshold = 64;  // entries between snapshots (1 MiB each here)
constexpr size_t kValueBytes = 64 * 1024;
constexpr int kValuesPerEntry = 16;

long SelfStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(std::string(key) + ":", 0) == 0)
      return std::atol(line.c_str() + strlen(key) + 1);
  }
  return -1;
}

// Samples RssAnon every 10 ms until stopped; the peak growth over the start, in KiB.
class AnonPeak {
 public:
  AnonPeak() : start_(SelfStatusKb("RssAnon")), peak_(start_) {
    thread_ = std::thread([this] {
      while (!stop_) {
        peak_ = std::max(peak_.load(), SelfStatusKb("RssAnon"));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  long Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return peak_ - start_;
  }
  ~AnonPeak() { Stop(); }

 private:
  long start_;
  std::atomic<long> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One entry: kValuesPerEntry values of 64 KiB under keys numbered from `first`.
std::vector<strongroom::storage::BatchOp> Entry(uint64_t first) {
  std::vector<strongroom::storage::BatchOp> ops;
  for (int i = 0; i < kValuesPerEntry; ++i) {
    std::string v(kValueBytes, static_cast<char>('a' + (first + i) % 26));
    std::memcpy(v.data(), &first, sizeof first);
    ops.push_back(strongroom::storage::BatchOp::Put("k" + std::to_string(first + i), std::move(v)));
  }
  return ops;
}

// Applies `ops` on whichever node leads (a stalled leader loses the leadership), retrying for
// up to 60 s.
bool ApplyOnLeader(std::vector<std::unique_ptr<RaftStorage>>& nodes,
                   const std::vector<strongroom::storage::BatchOp>& ops) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    for (auto& n : nodes) {
      if (n->IsLeader() && n->Apply(ops).ok()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The longest loop stall of any node since the last call.
uint64_t MaxStall(std::vector<std::unique_ptr<RaftStorage>>& nodes) {
  uint64_t m = 0;
  for (auto& n : nodes) {
    if (n) m = std::max(m, n->TakeMaxLoopStallMs());
  }
  return m;
}

uint64_t MaxTerm(std::vector<std::unique_ptr<RaftStorage>>& nodes) {
  uint64_t m = 0;
  for (auto& n : nodes) {
    if (n) m = std::max(m, n->Term());
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  long store_mb = 256;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--store-mb=", 11) == 0) store_mb = std::atol(argv[i] + 11);
  }
  if (store_mb < 16) store_mb = 16;
  const std::string dir = strongroom::bench::MakeTempDir();
  const auto certs = strongroom::testing::MakeClusterCerts(dir, "bench");
  if (certs.ca.empty()) {
    std::fprintf(stderr, "snapshot_bench: set-up failed (openssl)\n");
    return 1;
  }
  std::vector<std::unique_ptr<RaftStorage>> nodes;
  std::vector<std::string> addresses;
  std::vector<strongroom::raft::RaftOptions> options;
  for (int i = 1; i <= 3; ++i) {
    strongroom::raft::RaftOptions o;
    o.node_id = static_cast<uint64_t>(i);
    o.address = "127.0.0.1:" + std::to_string(strongroom::testing::FreeLoopbackPortPair());
    o.dir = dir + "/node-" + std::to_string(i);
    o.tls = {certs.ca, certs.cert, certs.key, nullptr};
    o.bootstrap = i == 1;
    o.snapshot_threshold = kThreshold;
    o.snapshot_trailing = 16;
    auto node = RaftStorage::Start(o);
    if (!node.ok()) {
      std::fprintf(stderr, "snapshot_bench: %s\n", node.status().ToString().c_str());
      return 1;
    }
    nodes.push_back(std::move(*node));
    addresses.push_back(o.address);
    options.push_back(o);
  }
  RaftStorage& leader = *nodes[0];
  while (!leader.IsLeader()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (size_t i = 1; i < 3; ++i) {
    if (!leader.AddVoter(i + 1, addresses[i]).ok()) return 1;
  }

  const uint64_t entries = static_cast<uint64_t>(store_mb);  // 1 MiB each
  std::printf(
      "snapshot_bench: 3 nodes in one process, store of %ld MiB (64 KiB values), a "
      "snapshot every %u entries\n\n",
      store_mb, kThreshold);
  const auto fill_start = Clock::now();
  const uint64_t term_start = MaxTerm(nodes);
  uint64_t fill_max_stall = 0;
  for (uint64_t e = 0; e < entries; ++e) {
    if (!ApplyOnLeader(nodes, Entry(e * kValuesPerEntry))) {
      std::fprintf(stderr, "snapshot_bench: write %llu failed\n",
                   static_cast<unsigned long long>(e));
      return 1;
    }
    fill_max_stall = std::max(fill_max_stall, MaxStall(nodes));
  }
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the last snapshot of the fill is written
  fill_max_stall = std::max(fill_max_stall, MaxStall(nodes));
  const uint64_t fill_elections = MaxTerm(nodes) - term_start;

  // One more snapshot of the full store, measured alone: peak memory from here (5 resets
  // VmHWM to the current RSS), the loop's longest stall, and small writes served meanwhile.
  const long rss_before = SelfStatusKb("VmRSS");
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  AnonPeak snap_anon;
  const auto snap_start = Clock::now();
  std::atomic<bool> writing{true};
  std::atomic<uint64_t> small_writes{0};
  double worst_write_ms = 0;
  std::thread writer([&] {
    uint64_t n = 0;
    while (writing) {
      const auto t = Clock::now();
      if (ApplyOnLeader(nodes, {strongroom::storage::BatchOp::Put(
                                   "small" + std::to_string(n++ % 100), "x")})) {
        ++small_writes;
      }
      worst_write_ms = std::max(
          worst_write_ms, std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    }
  });
  // kThreshold entries of the same keys: the store's size stays, a snapshot is due.
  const uint64_t term_before = MaxTerm(nodes);
  for (uint64_t e = 0; e < kThreshold; ++e) ApplyOnLeader(nodes, Entry(e * kValuesPerEntry));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  writing = false;
  writer.join();
  const uint64_t snap_stall = MaxStall(nodes);
  const uint64_t snap_elections = MaxTerm(nodes) - term_before;
  const long peak = SelfStatusKb("VmHWM");
  const long snap_anon_kb = snap_anon.Stop();
  const double snap_s = std::chrono::duration<double>(Clock::now() - snap_start).count();

  std::printf("fill: %.1f s (%.1f MiB/s), longest loop stall %llu ms, %llu election(s)\n", fill_s,
              static_cast<double>(store_mb) / fill_s,
              static_cast<unsigned long long>(fill_max_stall),
              static_cast<unsigned long long>(fill_elections));
  std::printf("snapshot of the full store (%.1f s window, %llu small writes served):\n", snap_s,
              static_cast<unsigned long long>(small_writes.load()));
  std::printf(
      "  longest Raft loop stall   %6llu ms  = %.1fx the heartbeat (100 ms), %.2fx the "
      "election timeout (1000 ms)\n",
      static_cast<unsigned long long>(snap_stall), static_cast<double>(snap_stall) / 100.0,
      static_cast<double>(snap_stall) / 1000.0);
  std::printf("  slowest small write       %6.0f ms\n", worst_write_ms);
  std::printf("  elections meanwhile       %6llu\n",
              static_cast<unsigned long long>(snap_elections));
  std::printf("  peak memory growth        %6ld MiB  = %.2fx the store (%ld MiB)\n",
              (peak - rss_before) / 1024,
              static_cast<double>(peak - rss_before) / 1024 / static_cast<double>(store_mb),
              store_mb);
  std::printf("  peak anonymous growth     %6ld MiB  = %.2fx the store\n", snap_anon_kb / 1024,
              static_cast<double>(snap_anon_kb) / 1024 / static_cast<double>(store_mb));

  // A follower that lost its disk: empty, it is sent the whole store (InstallSnapshot).
  nodes[2].reset();
  strongroom::bench::RemoveTree(options[2].dir);
  (void)MaxStall(nodes);  // from here
  const uint64_t install_term = MaxTerm(nodes);
  options[2].bootstrap = false;
  AnonPeak install_anon;
  const auto install_start = Clock::now();
  auto again = RaftStorage::Start(options[2]);
  if (!again.ok()) {
    std::fprintf(stderr, "snapshot_bench: %s\n", again.status().ToString().c_str());
    return 1;
  }
  nodes[2] = std::move(*again);
  const uint64_t target = nodes[0]->CommitIndex();
  bool caught_up = false;
  while (Clock::now() - install_start < std::chrono::seconds(600)) {
    if (nodes[2]->AppliedIndex() >= target) {
      caught_up = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // libraft counts the snapshot applied once it is handed over; the store holds it once the
  // restore (off the follower's loop) is done, which a read waits for.
  if (caught_up && !nodes[2]->Get("bench-probe").ok()) caught_up = false;
  const double install_s = std::chrono::duration<double>(Clock::now() - install_start).count();
  const long install_anon_kb = install_anon.Stop();
  const uint64_t follower_stall = nodes[2]->TakeMaxLoopStallMs();
  const uint64_t install_stall = MaxStall(nodes);
  const uint64_t install_elections = MaxTerm(nodes) - install_term;
  std::printf("a follower that lost its disk, sent the whole store (%s in %.1f s):\n",
              caught_up ? "caught up" : "NOT caught up", install_s);
  std::printf("  peak anonymous growth     %6ld MiB  = %.2fx the store\n", install_anon_kb / 1024,
              static_cast<double>(install_anon_kb) / 1024 / static_cast<double>(store_mb));
  std::printf(
      "  longest Raft loop stall   %6llu ms  = %.2fx the election timeout (1000 ms) on the "
      "follower (it restores off its loop)\n",
      static_cast<unsigned long long>(follower_stall),
      static_cast<double>(follower_stall) / 1000.0);
  std::printf("                            %6llu ms  = %.2fx on the other two nodes\n",
              static_cast<unsigned long long>(install_stall),
              static_cast<double>(install_stall) / 1000.0);
  std::printf("  elections meanwhile       %6llu\n",
              static_cast<unsigned long long>(install_elections));
  const strongroom::raft::SpillStats spill = strongroom::raft::GetSpillStats();
  const char* setting = std::getenv("STRONGROOM_RAFT_SPILL_BYTES");
  std::printf("  file-backed buffers made  %6llu MiB in %llu (STRONGROOM_RAFT_SPILL_BYTES=%s)\n",
              static_cast<unsigned long long>(spill.bytes_total >> 20),
              static_cast<unsigned long long>(spill.blocks_total),
              setting != nullptr ? setting : "unset");
  nodes.clear();
  strongroom::bench::RemoveTree(dir);
  return caught_up ? 0 : 1;
}
