// KV v2 reads share their key's stripe lock (issue 22; engines/kv_backend.cc): many readers of
// one hot key at once, while each write still reads and rewrites the metadata alone. Readers
// racing writers that prune every older version (max_versions = 1) must always see a version's
// metadata together with that version's data, and check-and-set writes must stay serial.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/engines/core_fixture.h"

namespace strongroom::testing {
namespace {

using core::Operation;
using core::json::object;

class KvReadTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    ASSERT_TRUE(MountKv2("secret").status.ok());
  }
  // Writes {"n": n} to the hot key with check-and-set `cas`; the HTTP status.
  int Write(int64_t n, int64_t cas) {
    object data;
    data["n"] = n;
    object opts;
    opts["cas"] = cas;
    object body;
    body["data"] = std::move(data);
    body["options"] = std::move(opts);
    return Root(Operation::kUpdate, "secret/data/hot", std::move(body)).code();
  }
};

TEST_F(KvReadTest, ReadersSeeEachVersionWholeWhileWritersPruneAndCasStaysSerial) {
  ASSERT_EQ(Root(Operation::kUpdate, "secret/metadata/hot", {{"max_versions", 1}}).code(), 204);
  ASSERT_EQ(Write(1, 0), 200);
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        Reply r = Root(Operation::kRead, "secret/data/hot");
        if (r.code() != 200 || !r.response.data) {
          ++torn;
          continue;
        }
        const object& d = *r.response.data;
        const auto& data = d.at("data");
        // The data written as version n carries n: metadata and data are of one version.
        if (!data.is_object() ||
            data.as_object().at("n").as_int64() != d.at("metadata").at("version").as_int64()) {
          ++torn;
        }
        ++reads;
      }
    });
  }
  // Writers race for the next version with check-and-set: exactly one wins each round.
  std::atomic<int64_t> wins{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&] {
      for (int round = 0; round < 60; ++round) {
        Reply meta = Root(Operation::kRead, "secret/metadata/hot");
        if (!meta.status.ok()) continue;
        const int64_t current = meta.response.data->at("current_version").as_int64();
        if (Write(current + 1, current) == 200) ++wins;
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 0);
  Reply meta = Root(Operation::kRead, "secret/metadata/hot");
  ASSERT_TRUE(meta.status.ok()) << meta.status;
  EXPECT_EQ(meta.response.data->at("current_version").as_int64(), 1 + wins.load());
}

}  // namespace
}  // namespace strongroom::testing
