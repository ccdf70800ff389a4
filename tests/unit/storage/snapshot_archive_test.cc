// The snapshot archive (storage/snapshot_archive.h): what it refuses before any work is done.
#include "appliance/storage/snapshot_archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace strongroom::storage {
namespace {

using ::testing::HasSubstr;

SnapshotArchive Sample() {
  SnapshotArchive a;
  a.created_unix = 1700000000;
  a.entries = {{"core/keyring", std::string("\x00\x01wrapped", 9)},
               {"logical/x/a", "v1"},
               {"logical/x/b", std::string(1000, 'z')}};
  return a;
}

TEST(SnapshotArchiveTest, RoundTripsAndChecksItsMac) {
  const std::string bytes = EncodeSnapshot(Sample(), "mac-key");
  auto decoded = DecodeSnapshot(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->created_unix, 1700000000);
  EXPECT_EQ(decoded->entries, Sample().entries);
  EXPECT_TRUE(VerifySnapshotMac(bytes, "mac-key").ok());
  EXPECT_THAT(std::string(VerifySnapshotMac(bytes, "other-key").message()),
              HasSubstr("MAC does not verify"));
}

TEST(SnapshotArchiveTest, EveryTruncationAndEveryFlippedByteIsRefused) {
  const std::string bytes = EncodeSnapshot(Sample(), "mac-key");
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, len)).ok()) << len;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] ^= 0x20;
    EXPECT_FALSE(DecodeSnapshot(flipped).ok()) << i;
  }
}

TEST(SnapshotArchiveTest, OversizedIsRefusedBeforeHashing) {
  auto r = DecodeSnapshot(std::string(kMaxSnapshotBytes + 1, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("over the limit"));
}

TEST(SnapshotArchiveTest, KeysOutOfOrderAreRefused) {
  SnapshotArchive a = Sample();
  std::swap(a.entries[1], a.entries[2]);
  auto r = DecodeSnapshot(EncodeSnapshot(a, "k"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("out of order"));
}

// The bounded builder stops at the limit: the entry that would pass it is not added, nor any
// after it, and what it built up to then never exceeded the limit.
TEST(SnapshotArchiveTest, BuilderStopsAtTheLimit) {
  constexpr size_t kLimit = 4096;
  SnapshotBuilder b(1700000000, kLimit);
  const std::string value(1000, 'v');
  int added = 0;
  while (b.Add("k" + std::to_string(100 + added), value)) ++added;
  EXPECT_EQ(added, 3);  // 20 + 64 + 4 x (8 + 4 + 1000) = 4132 would pass 4096: three fit
  EXPECT_TRUE(b.over_limit());
  EXPECT_EQ(b.entries(), static_cast<size_t>(added));
  EXPECT_LE(b.bytes(), kLimit);
  EXPECT_FALSE(b.Add("k", ""));  // not even a small one after the refusal
  EXPECT_EQ(b.entries(), static_cast<size_t>(added));
}

TEST(SnapshotArchiveTest, BuilderMakesWhatEncodeMakesAndItDecodes) {
  SnapshotBuilder b(1700000000);
  for (const auto& [k, v] : Sample().entries) ASSERT_TRUE(b.Add(k, v));
  EXPECT_FALSE(b.over_limit());
  const std::string bytes = std::move(b).Finish("mac-key");
  EXPECT_EQ(bytes, EncodeSnapshot(Sample(), "mac-key"));
  auto r = DecodeSnapshot(bytes);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, Sample().entries);
  EXPECT_TRUE(VerifySnapshotMac(bytes, "mac-key").ok());
}

}  // namespace
}  // namespace strongroom::storage
