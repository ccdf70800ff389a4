// The Raft entry and snapshot encodings: round trips, and every damaged form refused cleanly.
#include "appliance/raft/log_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strongroom::raft {
namespace {

using storage::BatchOp;

TEST(LogCodec, BatchRoundTripsAndIsPaddedToEightBytes) {
  std::vector<BatchOp> ops = {BatchOp::Put("a/b", std::string("v\0w", 3)), BatchOp::Delete("gone"),
                              BatchOp::Put("", ""), BatchOp::Put("k", std::string(1000, 'x'))};
  std::string bytes = EncodeBatch(ops);
  EXPECT_EQ(bytes.size() % 8, 0u);
  auto back = DecodeBatch(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 4u);
  EXPECT_EQ((*back)[0].key, "a/b");
  EXPECT_EQ((*back)[0].value, std::string("v\0w", 3));
  EXPECT_EQ((*back)[1].kind, BatchOp::Kind::kDelete);
  EXPECT_EQ((*back)[1].key, "gone");
  EXPECT_EQ((*back)[3].value.size(), 1000u);
  EXPECT_TRUE(DecodeBatch(EncodeBatch({})).value().empty());
}

TEST(LogCodec, WritesJoinedIntoOneBatchAreTheBatchOfAllTheirOps) {
  const std::vector<BatchOp> a = {BatchOp::Put("a/1", "x"), BatchOp::Delete("a/2")};
  const std::vector<BatchOp> b = {};
  const std::vector<BatchOp> c = {BatchOp::Put("a/1", std::string(999, 'y'))};
  const EncodedOps ea = EncodeOps(a), eb = EncodeOps(b), ec = EncodeOps(c);
  const std::vector<const EncodedOps*> parts = {&ea, &eb, &ec};
  std::string joined(JoinedBatchSize(parts), '?');
  JoinBatch(parts, joined.data());
  std::vector<BatchOp> all = a;
  all.insert(all.end(), c.begin(), c.end());
  EXPECT_EQ(joined, EncodeBatch(all));  // byte for byte: any version decodes it
  auto back = DecodeBatch(joined);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ((*back)[2].value, std::string(999, 'y'));  // in order: the later write of a/1 last
}

TEST(LogCodec, EveryTruncationOrBadByteOfABatchIsRefused) {
  std::string bytes = EncodeBatch({BatchOp::Put("key", "value"), BatchOp::Delete("k2")});
  // Strip the padding to find where the real data ends.
  size_t end = bytes.find_last_not_of('\0') + 1;
  for (size_t n = 0; n < end; ++n) {
    auto r = DecodeBatch(bytes.substr(0, n));
    EXPECT_FALSE(r.ok()) << "length " << n;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    }
  }
  std::string bad_kind = bytes;
  bad_kind[8] = 9;
  EXPECT_FALSE(DecodeBatch(bad_kind).ok());
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_FALSE(DecodeBatch(bad_magic).ok());
  // A count far beyond the bytes present is refused before anything is allocated.
  std::string huge = bytes;
  huge[4] = huge[5] = huge[6] = huge[7] = '\xff';
  EXPECT_FALSE(DecodeBatch(huge).ok());
  // Padding is zeros up to the next multiple of eight, no more, no fewer.
  EXPECT_FALSE(DecodeBatch(bytes + std::string(8, '\0')).ok());
  EXPECT_FALSE(DecodeBatch(std::string("SRB1\0\0\0\0\0", 9)).ok());
  std::string nonzero_pad = bytes;
  if (end < nonzero_pad.size()) {
    nonzero_pad.back() = 'x';
    EXPECT_FALSE(DecodeBatch(nonzero_pad).ok());
  }
}

TEST(LogCodec, SnapshotRoundTripsAndRefusesDamage) {
  SnapshotWriter w;
  w.Add("a", "1");
  w.Add(std::string("b\0", 2), "");
  std::string bytes = std::move(w).Finish();
  std::vector<std::pair<std::string, std::string>> seen;
  ASSERT_TRUE(DecodeSnapshot(bytes, [&](std::string_view k, std::string_view v) {
                seen.emplace_back(k, v);
                return absl::OkStatus();
              }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].first, std::string("b\0", 2));
  auto ignore = [](std::string_view, std::string_view) { return absl::OkStatus(); };
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, n), ignore).ok()) << "length " << n;
  EXPECT_FALSE(DecodeSnapshot(bytes + "x", ignore).ok());
  // The callback's error stops the walk and is returned.
  EXPECT_EQ(DecodeSnapshot(bytes, [](std::string_view,
                                     std::string_view) { return absl::InternalError("stop"); })
                .code(),
            absl::StatusCode::kInternal);
  SnapshotWriter empty;
  EXPECT_TRUE(DecodeSnapshot(std::move(empty).Finish(), ignore).ok());
}

// In pieces: no pair is split, no piece outgrows its size unless one pair alone does, and the
// pieces in order are the same snapshot as one string.
TEST(LogCodec, SnapshotPiecesAreTheSameSnapshot) {
  SnapshotWriter whole;
  SnapshotWriter pieces(64);
  for (int i = 0; i < 40; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string value(i == 7 ? 200 : 10, static_cast<char>('a' + i % 26));
    whole.Add(key, value);
    pieces.Add(key, value);
  }
  std::vector<std::string> parts = std::move(pieces).FinishPieces();
  ASSERT_GT(parts.size(), 5u);
  std::string joined;
  for (const std::string& p : parts) {
    EXPECT_TRUE(p.size() <= 64 || p.size() == 8 + 2 + 200) << p.size();
    joined += p;
  }
  EXPECT_EQ(joined, std::move(whole).Finish());
  int seen = 0;
  ASSERT_TRUE(DecodeSnapshot(joined, [&](std::string_view, std::string_view) {
                ++seen;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(seen, 40);
}

// With a piece callback (the state machine puts those pieces in file-backed buffers): the
// middle pieces are handed over in order as they fill, only the first (which gets the count)
// and the last stay, and first + handed + last is the same snapshot.
TEST(LogCodec, SnapshotPiecesHandedOverAsTheyFillAreTheSameSnapshot) {
  SnapshotWriter whole;
  std::vector<std::string> handed;
  SnapshotWriter pieces(64, [&](std::string&& p) { handed.push_back(std::move(p)); });
  for (int i = 0; i < 40; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string value(i == 7 ? 200 : 10, static_cast<char>('a' + i % 26));
    whole.Add(key, value);
    pieces.Add(key, value);
  }
  std::vector<std::string> ends = std::move(pieces).FinishPieces();
  ASSERT_EQ(ends.size(), 2u);
  ASSERT_GT(handed.size(), 3u);
  std::string joined = ends[0];
  for (const std::string& p : handed) joined += p;
  joined += ends[1];
  EXPECT_EQ(joined, std::move(whole).Finish());
}

}  // namespace
}  // namespace strongroom::raft
