// The writer side of the audit log (audit/chain.h): chained lines, checkpoints, resuming.
#include "audit/chain.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "audit/verifier.h"
#include "tests/unit/audit/test_log.h"

namespace strongroom::audit {
namespace {

using testing::LogBuilder;
using testing::Must;
using testing::MustKey;
using testing::MustPublic;
using testing::VaultRecord;

TEST(ChainedLine, ExactFormat) {
  ChainState state;
  Result<ChainedLine> first = MakeChainedLine(
      R"({"type":"request","time":"2024-05-01T12:00:00Z","request":{"id":"x"}})", state);
  ASSERT_TRUE(first.ok()) << first.message();
  const std::string zeros(64, '0');
  const std::string canonical =
      R"({"prev_hash":")" + zeros +
      R"(","request":{"id":"x"},"seq":1,"time":"2024-05-01T12:00:00Z","type":"request"})";
  const Hash hash = Sha256({AsBytes(Hash{}), canonical});
  EXPECT_EQ(
      first->line,
      R"({"hash":")" + HexEncode(hash) + R"(","prev_hash":")" + zeros +
          R"(","request":{"id":"x"},"seq":1,"time":"2024-05-01T12:00:00Z","type":"request"})" +
          "\n");
  EXPECT_EQ(first->next.last_seq, 1u);
  EXPECT_EQ(first->next.last_hash, hash);
  EXPECT_EQ(first->next.tree.size(), 1u);
  EXPECT_EQ(first->next.tree.Root(), HashLeaf(canonical));
  // The input state is untouched (the writer commits `next` only after a durable write).
  EXPECT_EQ(state, ChainState());

  Result<ChainedLine> second =
      MakeChainedLine(R"({"type":"response","time":"2024-05-01T12:00:01Z"})", first->next);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->line.find(R"("prev_hash":")" + HexEncode(hash) + "\""), std::string::npos);
  EXPECT_NE(second->line.find(R"("seq":2)"), std::string::npos);

  // What the writer produces, the line parser accepts.
  Result<ChainedRecord> rec = ParseChainedLine(second->line.substr(0, second->line.size() - 1));
  ASSERT_TRUE(rec.ok()) << rec.message();
  EXPECT_EQ(rec->seq, 2u);
  EXPECT_EQ(rec->hash, second->next.last_hash);
}

TEST(ChainedLine, RejectsBadRecords) {
  ChainState state;
  EXPECT_FALSE(MakeChainedLine("[]", state).ok());
  EXPECT_FALSE(MakeChainedLine("{", state).ok());
  EXPECT_FALSE(MakeChainedLine(R"({"time":"t"})", state).ok());
  EXPECT_FALSE(MakeChainedLine(R"({"type":"request"})", state).ok());
  EXPECT_FALSE(MakeChainedLine(R"({"type":"request","time":""})", state).ok());
  EXPECT_FALSE(MakeChainedLine(R"({"type":"checkpoint","time":"t"})", state).ok());
  for (const char* reserved : {"seq", "prev_hash", "hash"}) {
    EXPECT_FALSE(MakeChainedLine(
                     std::string(R"({"type":"request","time":"t",")") + reserved + R"(":1})", state)
                     .ok())
        << reserved;
  }
  // Numbers keep their spelling; non-canonical input becomes canonical.
  Result<ChainedLine> line =
      MakeChainedLine("{ \"type\" : \"request\", \"time\":\"t\", \"ttl\": 1.50 }", state);
  ASSERT_TRUE(line.ok());
  EXPECT_NE(line->line.find("\"ttl\":1.50,\"type\""), std::string::npos);
}

// The line the chain fields give a record, built the plain way: the members added to the parsed
// object, canonical form taken twice (what MakeChainedLine did before records were prepared).
std::string ReferenceLine(std::string_view record, const ChainState& state, Hash* hash) {
  Json obj = ParseJson(record).value();
  obj.Set("seq", Json::Uint(state.last_seq + 1));
  obj.Set("prev_hash", Json::String(HexEncode(state.last_hash)));
  *hash = Sha256({AsBytes(state.last_hash), CanonicalJson(obj)});
  obj.Set("hash", Json::String(HexEncode(*hash)));
  return CanonicalJson(obj) + "\n";
}

// Prepared records: members on every side of "hash", "prev_hash" and "seq" (and of each other:
// "h" < "hash" < "hash0" < "p" < "prev_hash" < "prev_hashes" < "s" < "seq" < "seq0") land
// where canonical order puts them, whichever way the record was prepared.
TEST(PreparedRecord, ChainsToTheSameLineAsTheParsedRecord) {
  const std::vector<std::string> records = {
      R"({"type":"request","time":"t"})",
      R"({"type":"request","time":"t","auth":{},"error":"e\u0001"})",
      R"({"a":1,"h":[true,null],"hash0":"x","p":{"z":1,"a":2},"prev_hashes":-0.5e3,"s":"ü",)"
      R"("seq0":{},"time":"2024-05-01T12:00:00Z","type":"response","z":"\"q\""})",
      VaultRecord(7),
  };
  ChainState state;
  for (int round = 0; round < 2; ++round) {
    for (const std::string& text : records) {
      Hash want_hash{};
      const std::string want = ReferenceLine(text, state, &want_hash);
      Json obj = ParseJson(text).value();
      Result<PreparedRecord> from_json = PrepareRecord(obj);
      ASSERT_TRUE(from_json.ok()) << from_json.message();
      std::vector<std::pair<std::string, std::string>> members;
      for (const auto& [key, value] : obj.members()) {
        members.emplace_back(key, CanonicalJson(value));
      }
      std::reverse(members.begin(), members.end());  // any order
      Result<PreparedRecord> from_members = PrepareRecord(members);
      ASSERT_TRUE(from_members.ok()) << from_members.message();
      for (const PreparedRecord* p : {&*from_json, &*from_members}) {
        Result<ChainedLine> line = MakeChainedLine(*p, state);
        ASSERT_TRUE(line.ok()) << line.message();
        EXPECT_EQ(line->line, want);
        EXPECT_EQ(line->next.last_hash, want_hash);
        EXPECT_TRUE(ParseChainedLine(line->line.substr(0, line->line.size() - 1)).ok());
      }
      state = MakeChainedLine(*from_json, state).value().next;
    }
  }
  EXPECT_EQ(state.last_seq, 2 * records.size());
}

TEST(PreparedRecord, RefusesWhatMakeChainedLineRefuses) {
  using Members = std::vector<std::pair<std::string, std::string>>;
  const auto refused = [](Members m) { return !PrepareRecord(std::move(m)).ok(); };
  EXPECT_FALSE(refused({{"type", R"("request")"}, {"time", R"("t")"}}));
  EXPECT_TRUE(refused({{"time", R"("t")"}}));                           // no type
  EXPECT_TRUE(refused({{"type", R"("request")"}}));                     // no time
  EXPECT_TRUE(refused({{"type", R"("")"}, {"time", R"("t")"}}));        // empty type
  EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", R"("")"}}));  // empty time
  EXPECT_TRUE(refused({{"type", "7"}, {"time", R"("t")"}}));            // not a string
  EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", "null"}}));   // not a string
  for (const char* reserved : {"checkpoint", "mac", "unproven"}) {
    EXPECT_TRUE(refused({{"type", std::string("\"") + reserved + "\""}, {"time", R"("t")"}}))
        << reserved;
  }
  for (const char* chain : {"seq", "prev_hash", "hash"}) {
    EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", R"("t")"}, {chain, "1"}})) << chain;
  }
  EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", R"("t")"}, {"a", "1"}, {"a", "2"}}));
  EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", R"("t")"}, {"a", ""}}));
  EXPECT_TRUE(refused({{"type", R"("request")"}, {"time", R"("t")"}, {"bad\xff", "1"}}));
  // Too long: the line limit holds for prepared records too.
  EXPECT_FALSE(
      MakeChainedLine(PrepareRecord(Members{{"type", R"("request")"},
                                            {"time", R"("t")"},
                                            {"big", "\"" + std::string(kMaxLineBytes, 'x') + "\""}})
                          .value(),
                      ChainState())
          .ok());
}

TEST(CheckpointLine, DescribesTheState) {
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  std::vector<PublicKey> keys;
  keys.push_back(MustPublic(key));
  ChainState state;
  for (int i = 1; i <= 3; ++i) {
    Result<ChainedLine> l = MakeChainedLine(VaultRecord(static_cast<uint64_t>(i)), state);
    ASSERT_TRUE(l.ok());
    state = l->next;
  }
  const std::string body = Must(CheckpointBody("dev1", "node1", state, "2024-05-01T12:00:09Z"));
  EXPECT_EQ(body, "strongroom-audit/dev1/node1\n3\n" + Base64Encode(AsBytes(state.tree.Root())) +
                      "\nhead 3 " + HexEncode(state.last_hash) + "\ntime 2024-05-01T12:00:09Z\n");
  const std::string note = Must(SignCheckpoint(body, key));
  Result<ChainedLine> cp = MakeCheckpointLine(note, state, keys);
  ASSERT_TRUE(cp.ok()) << cp.message();
  EXPECT_EQ(cp->next.last_seq, 4u);
  EXPECT_EQ(cp->next.tree, state.tree);  // checkpoints are not Merkle leaves
  Result<ChainedRecord> rec = ParseChainedLine(cp->line.substr(0, cp->line.size() - 1));
  ASSERT_TRUE(rec.ok()) << rec.message();
  EXPECT_TRUE(rec->is_checkpoint);
  EXPECT_EQ(rec->note, note);
  EXPECT_EQ(rec->time, "2024-05-01T12:00:09Z");

  // A note for another state, or signed by another key, is never logged.
  Result<ChainedLine> next = MakeChainedLine(VaultRecord(4), state);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(MakeCheckpointLine(note, next->next, keys).ok());
  PrivateKey other = MustKey(KeyType::kEcdsaP256);
  EXPECT_FALSE(MakeCheckpointLine(Must(SignCheckpoint(body, other)), state, keys).ok());
  EXPECT_FALSE(MakeCheckpointLine(body, state, keys).ok());  // unsigned
}

TEST(CheckpointLine, EcdsaFromPkcs11RawSignature) {
  // The broker's path: sign the body with the token (raw r||s), convert, attach.
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  PublicKey pub = MustPublic(key);
  ChainState state;
  const std::string body = Must(CheckpointBody("dev1", "node1", state, "2024-05-01T12:00:00Z"));
  const std::string der = Must(key.Sign(body));
  EXPECT_TRUE(AttachSignature(body, pub, der).ok());
  EXPECT_FALSE(AttachSignature(body, pub, std::string(64, '\x01')).ok());
}

// A writer restarting reads its log back through the verifier and continues the chain.
TEST(ChainState, ResumeFromVerifiedLog) {
  PrivateKey key = MustKey(KeyType::kEd25519);
  std::vector<PublicKey> keys;
  keys.push_back(MustPublic(key));
  LogBuilder log(&key);
  log.AddRecords(5);
  log.AddCheckpoint();
  log.AddRecords(2);
  VerifyOptions options;
  options.keys = keys;
  Verifier v(options);
  v.BeginFile("audit.log");
  v.AddFileContents(log.Text());
  Report report = v.Finish();
  ASSERT_TRUE(report.ok()) << report.failure->ToString();
  EXPECT_EQ(report.state, log.state());
  // Saved and restored through its parts.
  Result<CompactRange> tree =
      CompactRange::FromNodes(report.state.tree.size(), report.state.tree.nodes());
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(*tree, log.state().tree);
}

}  // namespace
}  // namespace strongroom::audit
