// The verifier's fast path (audit/fast_line.h) is an accelerator, never a judge: whatever it
// accepts, the full parser (ParseChainedLine) accepts with the same seq, hashes, type and time,
// and the same leaf hash; everything else it leaves to the full parser. Checked on every kind of
// line, on hand-made non-canonical variants, and on many random mutations.
#include "audit/fast_line.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/merkle.h"
#include "tests/unit/audit/test_log.h"

namespace strongroom::audit {
namespace {

using testing::LogBuilder;
using testing::MustKey;

std::string Chomp(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Chains an arbitrary object (no checks): for lines the writer refuses to make.
std::string ChainRaw(Json obj, const ChainState& state) {
  obj.Set("seq", Json::Uint(state.last_seq + 1));
  obj.Set("prev_hash", Json::String(HexEncode(state.last_hash)));
  const Hash h = Sha256({AsBytes(state.last_hash), CanonicalJson(obj)});
  obj.Set("hash", Json::String(HexEncode(h)));
  return CanonicalJson(obj);
}

// Re-hashes a line whose text was edited so that its own hash holds again (the fast path
// then has to judge the form, not the hash).
std::string Rehash(const std::string& line) {
  const size_t at = line.find("\"hash\":\"");
  if (at == std::string::npos) return line;
  std::string without = line;
  // Remove the member and one comma next to it, as canonical serialization would.
  size_t begin = at;
  size_t end = at + 8 + 64 + 1;
  if (end < without.size() && without[end] == ',') {
    ++end;
  } else if (begin > 0 && without[begin - 1] == ',') {
    --begin;
  }
  without.erase(begin, end - begin);
  const size_t p = line.find("\"prev_hash\":\"");
  if (p == std::string::npos) return line;
  std::optional<Hash> prev = HashFromHex(line.substr(p + 13, 64));
  if (!prev) return line;
  std::string out = line;
  out.replace(at + 8, 64, HexEncode(Sha256({AsBytes(*prev), without})));
  return out;
}

// The property: an accepted line is accepted by the full parser with the same facts.
void ExpectSound(const std::string& line, FastLineChecker* fast) {
  FastLine f;
  if (!fast->Check(line, &f)) return;
  Result<ChainedRecord> rec = ParseChainedLine(line);
  ASSERT_TRUE(rec.ok()) << "fast path accepted what the parser rejects (" << rec.message()
                        << "): " << line;
  EXPECT_EQ(f.seq, rec->seq) << line;
  EXPECT_EQ(f.prev_hash, rec->prev_hash) << line;
  EXPECT_EQ(f.hash, rec->hash) << line;
  EXPECT_EQ(std::string(f.time), rec->time) << line;
  EXPECT_EQ(f.is_mac, rec->is_mac) << line;
  EXPECT_FALSE(rec->is_checkpoint) << line;
  EXPECT_FALSE(rec->is_unproven) << line;
  if (rec->is_leaf()) {
    EXPECT_EQ(f.leaf, HashLeaf(rec->canonical)) << line;
  }
}

std::vector<std::string> AllKindsOfLines() {
  static PrivateKey key = MustKey(KeyType::kEcdsaP256);
  LogBuilder b(&key);
  b.AddRecords(6);
  b.AddMac();
  b.AddCheckpoint();
  b.AddRecords(3);
  b.AddMac();
  b.AddRecords(2);
  b.AddUnproven(2);
  b.AddRecord();
  b.AddCheckpoint();
  std::vector<std::string> lines;
  for (const std::string& l : b.lines()) lines.push_back(Chomp(l));
  return lines;
}

TEST(FastLine, TakesRecordsAndMacLinesAndLeavesTheRest) {
  FastLineChecker fast;
  for (const std::string& line : AllKindsOfLines()) {
    Result<ChainedRecord> rec = ParseChainedLine(line);
    ASSERT_TRUE(rec.ok());
    FastLine f;
    const bool taken = fast.Check(line, &f);
    EXPECT_EQ(taken, rec->is_leaf() || rec->is_mac) << line;
    ExpectSound(line, &fast);
  }
}

TEST(FastLine, LeavesNonCanonicalAndOddLinesToTheParser) {
  FastLineChecker fast;
  const std::string record = AllKindsOfLines()[4];  // seq 5: has an "error" with \n
  FastLine f;
  ASSERT_TRUE(fast.Check(record, &f));
  const ChainState state = [] {
    ChainState s;
    s.last_seq = 41;
    s.last_hash = Sha256("previous");
    return s;
  }();
  auto chained = [&](const std::string& json) {
    Result<Json> obj = ParseJson(json);
    EXPECT_TRUE(obj.ok()) << json;
    return ChainRaw(*obj, state);
  };
  // Each variant keeps its own hash valid, so only its form decides; the fast path must not
  // take it (the parser rejects it, or accepts it through a path the fast one leaves alone).
  const std::vector<std::string> variants = {
      " " + record,                                // whitespace
      record + " ",                                //
      Rehash(std::string(record).insert(1, " ")),  // whitespace inside
      Rehash([&] {                                 // '/' escaped
        std::string s = record;
        s.replace(s.find("secret/data"), 7, "secret\\/");
        return s;
      }()),
      Rehash([&] {  // a letter escaped
        std::string s = record;
        s.replace(s.find("default"), 1, "\\u0064");
        return s;
      }()),
      Rehash([&] {  // uppercase hex in an escape
        std::string s = record;
        s.replace(s.find("\\n"), 2, "\\u000A");
        return s;
      }()),
      Rehash([&] {  // \u000a where \n is canonical
        std::string s = record;
        s.replace(s.find("\\n"), 2, "\\u000a");
        return s;
      }()),
      Rehash([&] {  // keys out of order
        std::string s = chained(R"({"b":1,"c":2,"time":"t","type":"request"})");
        s.replace(s.find(R"("b":1,"c":2)"), 11, R"("c":2,"b":1)");
        return s;
      }()),
      Rehash([&] {  // a duplicate key
        std::string s = chained(R"({"a":1,"time":"t","type":"request"})");
        s.insert(s.find(R"("a":1,)") + 6, R"("a":2,)");
        return s;
      }()),
      chained(R"({"k\"ey":1,"time":"t","type":"request"})"),    // key with an escape
      chained(R"({"time":"t","type":"checkpoint"})"),           // checkpoint: parser
      chained(R"({"time":"t","type":"unproven"})"),             // unproven: parser
      chained(R"({"mac":"00","time":"t","type":"mac"})"),       // bad MAC
      chained(R"({"extra":1,"mac":")" + std::string(64, 'a') +  // MAC with more fields
              R"(","time":"t","type":"mac"})"),
      chained(R"({"time":"","type":"request"})"),         // empty time
      chained(R"({"time":"t","type":""})"),               // empty type
      chained(R"({"time":1,"type":"request"})"),          // time not a string
      chained(R"({"time":"t\u0001","type":"request"})"),  // time with an escape
      Rehash([&] {  // a raw control character (tab, unit separator) in a string
        std::string s = record;
        s[s.find("agent-") + 2] = '\t';
        return s;
      }()),
      Rehash([&] {
        std::string s = record;
        s[s.find("agent-") + 2] = '\x1f';
        return s;
      }()),
      Rehash([&] {  // a number with a leading zero
        std::string s = chained(R"({"n":1,"time":"t","type":"request"})");
        s.replace(s.find(R"("n":1)"), 5, R"("n":01)");
        return s;
      }()),
      Rehash([&] {  // a non-ASCII character escaped
        std::string s = chained(R"({"n":"x","time":"t","type":"request"})");
        s.replace(s.find(R"("n":"x")"), 7, R"("n":"\u00e9")");
        return s;
      }()),
      std::string(R"({"hash":")") + std::string(64, 'a') + R"(","prev_hash":")" +
          std::string(64, '0') + R"(","seq":"1","time":"t","type":"request"})",  // seq a string
      std::string(R"({"hash":")") + std::string(64, 'a') + R"(","prev_hash":")" +
          std::string(64, '0') + R"(","seq":01,"time":"t","type":"request"})",
      std::string(R"({"hash":")") + std::string(64, 'a') + R"(","prev_hash":")" +
          std::string(64, '0') + R"(","seq":0,"time":"t","type":"request"})",
      std::string(R"({"hash":")") + std::string(64, 'A') + R"(","prev_hash":")" +
          std::string(64, '0') + R"(","seq":1,"time":"t","type":"request"})",
  };
  for (const std::string& v : variants) {
    EXPECT_FALSE(fast.Check(v, &f)) << v;
  }
  // Deep nesting beyond the fast path's 64 levels (the parser allows 128): parser's call.
  std::string deep =
      R"({"d":)" + std::string(70, '[') + std::string(70, ']') + R"(,"time":"t","type":"request"})";
  const std::string deep_line = chained(deep);
  EXPECT_FALSE(fast.Check(deep_line, &f));
  EXPECT_TRUE(ParseChainedLine(deep_line).ok());
  // Canonical oddities the fast path does take, checked against the parser.
  for (
      const std::string& json : std::vector<std::string>{
          R"({"a":[],"b":{},"c":[[],{}],"d":null,"e":true,"f":false,"time":"t","type":"x"})",
          R"({"n":[-0,0.5,-1.25e+10,3E-2,1e5,123456789012345678901234567890],"time":"t","type":"r"})",
          "{\"s\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\\u007f\",\"time\":\"t\",\"type\":\"r\"}",
          "{\"s\":\"\x7f \xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80\",\"time\":\"t\",\"type\":\"r\"}",
          R"({"":1,"a":{"":2,"b":3},"time":"t","type":"request"})",
          std::string(R"({"hash_list":[],"mac":")") + std::string(64, 'f') +
              R"(","time":"t","type":"response"})",
      }) {
    const std::string line = chained(json);
    ASSERT_TRUE(ParseChainedLine(line).ok()) << line;
    EXPECT_TRUE(fast.Check(line, &f)) << line;
    ExpectSound(line, &fast);
  }
  // Invalid UTF-8 (overlong, surrogate, above U+10FFFF, cut sequence, lone continuation) in
  // a line whose hash holds: never taken.
  for (const std::string& bad :
       {std::string("\xc0\x80"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
        std::string("\xe2\x80"), std::string("\x80"), std::string("\xf5\x80\x80\x80")}) {
    Json obj = Json::Object();
    obj.Set("time", Json::String("t"));
    obj.Set("type", Json::String("request"));
    std::string line = ChainRaw(obj, state);
    line.insert(line.find("\"time\""), "\"x\":\"" + bad + "\",");
    line = Rehash(line);
    EXPECT_FALSE(fast.Check(line, &f)) << line;
    EXPECT_FALSE(ParseChainedLine(line).ok());
  }
}

// Random edits of real lines, re-hashed so that the form is what is judged: whatever the fast
// path takes, the parser takes with the same facts.
TEST(FastLine, RandomMutationsAreNeverTakenWrongly) {
  FastLineChecker fast;
  const std::vector<std::string> lines = AllKindsOfLines();
  const std::string alphabet =
      std::string("{}[]\":,\\ abcfnrtu0123456789eE+-.\x7f\xc3\xa9\x80\x01\x1f\t\n") + '\0';
  uint64_t rng = 12345;
  auto next = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  size_t taken = 0;
  for (int i = 0; i < 40000; ++i) {
    std::string line = lines[next() % lines.size()];
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % line.size();
      const char c = alphabet[next() % alphabet.size()];
      switch (next() % 3) {
        case 0:
          line[pos] = c;
          break;
        case 1:
          line.insert(pos, 1, c);
          break;
        default:
          line.erase(pos, 1);
          break;
      }
    }
    if (next() % 2 == 0) line = Rehash(line);
    FastLine f;
    if (fast.Check(line, &f)) ++taken;
    ExpectSound(line, &fast);
    if (::testing::Test::HasFailure()) return;
  }
  // Some edits keep a line canonical (inside a string, say): the property was exercised.
  EXPECT_GT(taken, 100u);
}

}  // namespace
}  // namespace strongroom::audit
