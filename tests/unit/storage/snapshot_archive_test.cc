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

}  // namespace
}  // namespace strongroom::storage
