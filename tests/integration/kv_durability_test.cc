// Durability of KV v2 writes on a single node under concurrent load (group commit,
// storage/rocksdb_storage.h; pipelined writes of one key, engines/kv_backend.cc): the real
// strongroomd and workers, RocksDB on disk, a SoftHSM2 token. The broker is killed (SIGKILL, the
// whole process group) in the middle of a load of writers sharing a few hot keys and writing
// keys of their own, while a group is between its write-ahead log append and its sync (an
// LD_PRELOAD spy on fdatasync holds that sync on the test's signal). Then, as a power loss
// would, everything the broker had not synced is dropped: the spy recorded how much of RocksDB's
// write-ahead log was on stable storage, and the log is cut back to the middle of the unsynced
// tail, so the group in flight is torn. After a restart:
//   * every write a client got a 200 for is there, at the version its answer named, with its
//     data;
//   * no write is torn: every version the metadata lists reads back as data one client sent to
//     that key, each client write at most once, and versions run 1..current with no hole.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

struct Acked {
  int64_t version;
  std::string w;
};

class KvDurabilityTest : public ::testing::Test {
 protected:
  HttpResponse Put(const std::string& key, const std::string& w) {
    json body = {{"data", {{"w", w}, {"pad", std::string(300, 'p')}}}};
    return d_.Root("POST", "/v1/secret/data/" + key, body);
  }
  Daemon d_;
};

// The newest write-ahead log in a RocksDB directory ("" if none).
std::string NewestWal(const std::string& dir) {
  std::string best;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".log") && (best.empty() || name > std::filesystem::path(best).filename()))
      best = e.path().string();
  }
  return best;
}

TEST_F(KvDurabilityTest, AKilledBrokerKeepsEveryAcknowledgedWriteAndNoTornOne) {
  // Started with the spy on RocksDB's WAL syncs (the workers inherit it and never sync).
  const std::string spy_log = d_.dir() + "/wal-syncs";
  const std::string stall = d_.dir() + "/stall-wal-sync";
  const bool started = StartWithSyncSpy(d_, STRONGROOM_SYNC_SPY, spy_log, ".log", stall);
  ASSERT_TRUE(started) << d_.Log();
  d_.Init();
  ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204) << d_.Log();
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"max_versions", 100000}}).status, 204);

  constexpr int kClients = 8;
  const std::vector<std::string> hot = {"hot-0", "hot-1", "hot-2"};
  std::mutex mu;
  std::map<std::string, std::vector<Acked>> acked;    // key -> acknowledged writes
  std::map<std::string, std::set<std::string>> sent;  // key -> every w sent to it
  std::atomic<int> acked_count{0};
  std::atomic<int> other_answers{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        const std::string key = i % 2 == 0
                                    ? hot[static_cast<size_t>(i / 2) % hot.size()]
                                    : "own-" + std::to_string(c) + "-" + std::to_string(i % 16);
        const std::string w = std::to_string(c) + ":" + std::to_string(i);
        {
          std::lock_guard<std::mutex> lock(mu);
          sent[key].insert(w);
        }
        HttpResponse r = Put(key, w);
        if (r.status == 200) {
          const int64_t v = r.Json()["data"]["version"].get<int64_t>();
          std::lock_guard<std::mutex> lock(mu);
          acked[key].push_back({v, w});
          ++acked_count;
        } else if (r.status != 0) {
          ++other_answers;  // a 5xx from a broker going down, or the like: not acknowledged
        }
      }
    });
  }
  for (int i = 0; i < 3000 && acked_count < 400; ++i) usleep(10 * 1000);
  // The next WAL sync stays where it is: its group is appended, not durable, not answered.
  { std::ofstream(stall).put('1'); }
  bool held = false;
  for (int i = 0; i < 3000 && !(held = std::filesystem::exists(stall + ".held")); ++i) {
    usleep(10 * 1000);
  }
  d_.Kill();
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GE(acked_count.load(), 400) << d_.Log();
  ASSERT_TRUE(held) << "no WAL sync came after the signal";

  // Power loss: drop what was not synced, cutting into the unsynced tail.
  const std::string db = d_.data_dir();
  const std::string wal = NewestWal(db);
  ASSERT_FALSE(wal.empty()) << "no write-ahead log in " << db;
  uint64_t synced = 0;
  {
    std::ifstream in(spy_log);
    for (uint64_t n = 0; in >> n;) synced = n < synced ? n : std::max(synced, n);
  }
  const uint64_t size = std::filesystem::file_size(wal);
  ASSERT_LT(synced, size) << "the held group is not in the log, or the spy saw another log";
  const uint64_t cut = synced + (size - synced) / 2;
  std::filesystem::resize_file(wal, cut);
  RecordProperty("wal_bytes", static_cast<int>(size));
  RecordProperty("wal_unsynced_bytes_dropped", static_cast<int>(size - cut));
  RecordProperty("acknowledged", acked_count.load());

  ASSERT_TRUE(d_.Start()) << d_.Log();
  for (const auto& [key, writes] : acked) {
    for (const Acked& a : writes) {
      HttpResponse r =
          d_.Root("GET", "/v1/secret/data/" + key + "?version=" + std::to_string(a.version));
      ASSERT_EQ(r.status, 200) << key << " v" << a.version << ": " << r.body;
      EXPECT_EQ(r.Json()["data"]["data"]["w"], a.w) << key << " v" << a.version;
    }
  }
  for (const auto& [key, ws] : sent) {
    HttpResponse m = d_.Root("GET", "/v1/secret/metadata/" + key);
    if (m.status == 404) {
      EXPECT_EQ(acked.count(key), 0u) << key << " lost every acknowledged write";
      continue;
    }
    ASSERT_EQ(m.status, 200) << m.body;
    const json meta = m.Json()["data"];
    const int64_t current = meta["current_version"].get<int64_t>();
    EXPECT_EQ(meta["versions"].size(), static_cast<size_t>(current)) << key;
    std::set<std::string> seen;
    for (int64_t v = 1; v <= current; ++v) {
      HttpResponse r = d_.Root("GET", "/v1/secret/data/" + key + "?version=" + std::to_string(v));
      ASSERT_EQ(r.status, 200) << key << " v" << v << " listed but unreadable: " << r.body;
      const json data = r.Json()["data"]["data"];
      ASSERT_TRUE(data.is_object()) << key << " v" << v << " torn: metadata without data";
      const std::string w = data["w"].get<std::string>();
      EXPECT_TRUE(ws.count(w)) << key << " v" << v << " holds " << w << ", never sent to it";
      EXPECT_TRUE(seen.insert(w).second) << key << ": " << w << " stored twice";
    }
  }
  // And the node takes writes again.
  HttpResponse after = Put("hot-0", "after-restart");
  ASSERT_EQ(after.status, 200) << after.body;
}

}  // namespace
}  // namespace strongroom::testing
