// The JSON limits scan (appliance/core/json_limits.h): each limit at its boundary, Vault's way of
// counting (escapes as written, keys as strings), and agreement with Boost.JSON's parser on what
// is not JSON.
#include "appliance/core/json_limits.h"

#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "appliance/core/json.h"

namespace strongroom::core {

// For readable failures (gtest finds it by argument-dependent lookup).
void PrintTo(JsonLimit limit, std::ostream* out) {
  static constexpr const char* kNames[] = {"kNone",          "kSyntax",       "kDepth",
                                           "kStringLength",  "kNumberLength", "kObjectEntries",
                                           "kArrayElements", "kMemory",       "kStrings"};
  *out << kNames[static_cast<int>(limit)];
}

namespace {

JsonLimits Huge() {
  JsonLimits l;
  l.max_depth = 1000;
  l.max_string_length = 1ull << 40;
  l.max_object_entries = 1ull << 40;
  l.max_array_elements = 1ull << 40;
  l.max_memory = 1ull << 50;
  l.max_strings = 1ull << 40;
  return l;
}

bool BoostParses(const std::string& text) {
  json::parse_options opts;
  opts.max_depth = 1000;
  boost::system::error_code ec;
  json::parse(text, ec, {}, opts);
  return !ec;
}

TEST(JsonLimits, BlankAndOrdinaryBodiesPass) {
  const JsonLimits defaults;
  for (const char* ok : {"", "  \n\t", "{}", R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})",
                         R"( {"k" : [ -1.5e-3 , 0 , 12 ] } )", "[]", "\"s\"", "7", "null"}) {
    EXPECT_EQ(CheckJsonLimits(ok, defaults), JsonLimit::kNone) << ok;
  }
}

TEST(JsonLimits, DepthAsVaultCountsIt) {
  JsonLimits l = Huge();
  l.max_depth = 3;
  EXPECT_EQ(CheckJsonLimits(R"({"a":[{}]})", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits(R"({"a":[{"b":[]}]})", l), JsonLimit::kDepth);
  EXPECT_EQ(CheckJsonLimits("[[[]]]", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits("[[[[", l), JsonLimit::kDepth);  // refused before the end is seen
  // A million levels cost one comparison each: no recursion, no stack.
  l.max_depth = 64;
  EXPECT_EQ(CheckJsonLimits(std::string(1000000, '['), l), JsonLimit::kDepth);
}

TEST(JsonLimits, StringLengthCountsEscapesAsWrittenAndAppliesToKeys) {
  JsonLimits l = Huge();
  l.max_string_length = 6;
  EXPECT_EQ(CheckJsonLimits(R"({"k":"abcdef"})", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits(R"({"k":"abcdefg"})", l), JsonLimit::kStringLength);
  EXPECT_EQ(CheckJsonLimits(R"({"k":"\u0041"})", l), JsonLimit::kNone);  // 6 as written
  EXPECT_EQ(CheckJsonLimits(R"({"k":"\u0041\n"})", l), JsonLimit::kStringLength);
  EXPECT_EQ(CheckJsonLimits(R"({"abcdefg":1})", l), JsonLimit::kStringLength);
  EXPECT_EQ(CheckJsonLimits(R"({"k":1234567})", l), JsonLimit::kNumberLength);
  EXPECT_EQ(CheckJsonLimits(R"({"k":-1.5e1})", l), JsonLimit::kNone);
  // An unterminated string longer than the limit is refused for its length, not read to the end.
  EXPECT_EQ(CheckJsonLimits(R"({"k":")" + std::string(100, 'x'), l), JsonLimit::kStringLength);
}

TEST(JsonLimits, EntriesAndElementsPerContainer) {
  JsonLimits l = Huge();
  l.max_object_entries = 2;
  l.max_array_elements = 3;
  EXPECT_EQ(CheckJsonLimits(R"({"a":{"b":1,"c":2},"d":[1,2,3]})", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits(R"({"a":1,"b":2,"c":3})", l), JsonLimit::kObjectEntries);
  EXPECT_EQ(CheckJsonLimits(R"({"a":[1,[],{},"x"]})", l), JsonLimit::kArrayElements);
  // Per container: nested ones start their own count.
  EXPECT_EQ(CheckJsonLimits(R"([[1,2,3],[1,2,3],[1,2,3]])", l), JsonLimit::kNone);
}

TEST(JsonLimits, StringsCountKeysAndValues) {
  JsonLimits l = Huge();
  l.max_strings = 4;
  EXPECT_EQ(CheckJsonLimits(R"({"a":"b","c":["d",1,true]})", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits(R"({"a":"b","c":["d","e"]})", l), JsonLimit::kStrings);
}

TEST(JsonLimits, MemoryEstimate) {
  JsonLimits l = Huge();
  // {"a":[]}: the object (24 + 16), the entry (24 + 1), the array (24 + 16) = 105.
  l.max_memory = 105;
  EXPECT_EQ(CheckJsonLimits(R"({"a":[]})", l), JsonLimit::kNone);
  l.max_memory = 104;
  EXPECT_EQ(CheckJsonLimits(R"({"a":[]})", l), JsonLimit::kMemory);
  // A string value adds its length: {"a":"xyz"} = 40 + 25 + 24 + 3 = 92.
  l.max_memory = 92;
  EXPECT_EQ(CheckJsonLimits(R"({"a":"xyz"})", l), JsonLimit::kNone);
  EXPECT_EQ(CheckJsonLimits(R"({"a":"xyzw"})", l), JsonLimit::kMemory);
}

// The body of the issue: 32 MiB of tiny strings is refused at the 10,001st, and with arrays of
// 10,000 by the number of strings; with the defaults, a Transit batch of 10,000 items passes.
TEST(JsonLimits, DefaultsRefuseTheFloodAndPassTheBatch) {
  const JsonLimits defaults;
  std::string flood = R"({"k":[)";
  while (flood.size() < (32u << 20) - 8) flood += R"("a",)";
  flood += R"("a"]})";
  EXPECT_EQ(CheckJsonLimits(flood, defaults), JsonLimit::kArrayElements);
  std::string inner = "[";
  for (int i = 0; i < 10000; ++i) inner += i ? R"(,"a")" : R"("a")";
  inner += "]";
  std::string nested = R"({"k":[)" + inner;
  while (nested.size() < (32u << 20) - inner.size() - 8) nested += "," + inner;
  nested += "]}";
  EXPECT_EQ(CheckJsonLimits(nested, defaults), JsonLimit::kStrings);
  std::string batch = R"({"batch_input":[)";
  for (int i = 0; i < 10000; ++i) {
    batch += std::string(i ? "," : "") +
             R"({"plaintext":"aGVsbG8=","context":"Y3R4","nonce":"bm9uY2U=","key_version":1})";
  }
  batch += "]}";
  EXPECT_EQ(CheckJsonLimits(batch, defaults), JsonLimit::kNone);
}

TEST(JsonLimits, NotJsonIsSyntaxAndBoostAgrees) {
  for (const char* bad :
       {"{",     "}",         "{\"a\"}",   "{\"a\":}",   "{\"a\":1,}",    "[1,]",
        "[1 2]", "{\"a\" 1}", "{1:2}",     "tru",        "nul",           "[truex]",
        "\"abc", "\"a\\x\"",  "\"\\u12\"", "\"a\x01\"",  "{} {}",         "[]]",
        "{]",    "[}",        "'a'",       "{\"a\":1}x", "\xef\xbb\xbf{}"}) {
    EXPECT_EQ(CheckJsonLimits(bad, Huge()), JsonLimit::kSyntax) << bad;
    EXPECT_FALSE(BoostParses(bad)) << bad;
  }
}

// Whatever Boost.JSON accepts the scan accepts too (so a body the scan calls not-JSON never
// reaches the parser unchecked), over many random mutations of valid documents.
TEST(JsonLimits, NeverStricterThanTheParser) {
  const std::vector<std::string> seeds = {
      R"({"a":[1,-2.5e+3,true,false,null,"s\"\\\/\b\f\n\r\t\u00e9"],"b":{"c":{}}})",
      R"([ {"k" : "v"} , [ ] , 0.0 , -0 , 1E9 , "\ud83d\ude00" ])",
      "{\"\xc3\xa9\":\"\xe2\x82\xac\"}"};
  const std::string alphabet = "{}[]:,\"\\ 0123456789.eE+-tfnrulasu\x01\xc3\xa9";
  std::mt19937 rng(23);
  int accepted = 0;
  for (int round = 0; round < 50000; ++round) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s.erase(at, 1);
          break;
        case 1:
          s.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          s[at] = alphabet[rng() % alphabet.size()];
      }
    }
    if (BoostParses(s)) {
      ++accepted;
      EXPECT_NE(CheckJsonLimits(s, Huge()), JsonLimit::kSyntax) << s;
    }
  }
  EXPECT_GT(accepted, 100);  // the property was exercised
}

TEST(JsonLimits, ErrorTexts) {
  EXPECT_EQ(JsonLimitError(JsonLimit::kDepth), "JSON input exceeds allowed nesting depth");
  EXPECT_EQ(JsonLimitError(JsonLimit::kStringLength), "JSON string value exceeds allowed length");
  EXPECT_EQ(JsonLimitError(JsonLimit::kObjectEntries), "JSON object exceeds allowed entry count");
  EXPECT_EQ(JsonLimitError(JsonLimit::kArrayElements), "JSON array exceeds allowed element count");
  EXPECT_EQ(JsonLimitError(JsonLimit::kStrings),
            "refused JSON input due to high complexity: exceeded maximum number of strings");
  EXPECT_EQ(JsonLimitError(JsonLimit::kNone), "");
}

}  // namespace
}  // namespace strongroom::core
