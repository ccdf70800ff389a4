// The canonical JSON that audit hashes are computed over (audit/json.h).
#include "audit/json.h"

#include <gtest/gtest.h>

#include <string>

namespace strongroom::audit {
namespace {

std::string Canon(std::string_view text) {
  Result<Json> j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text << ": " << j.message();
  return j.ok() ? CanonicalJson(*j) : "<error>";
}

bool Rejects(std::string_view text) { return !ParseJson(text).ok(); }

TEST(CanonicalJson, SortsKeysBytewiseAndDropsWhitespace) {
  EXPECT_EQ(Canon(R"( { "b" : 1 , "a" : [ true , false , null ] , "A": {} } )"),
            R"({"A":{},"a":[true,false,null],"b":1})");
  // Code point order = UTF-8 byte order: "é" (C3 A9) after "z", "\u007f" after "z" too.
  EXPECT_EQ(Canon(R"({"é":1,"z":2,"\u007f":3,"":4})"), "{\"\":4,\"z\":2,\"\x7f\":3,\"é\":1}");
  // Nested objects are sorted too.
  EXPECT_EQ(Canon(R"({"x":{"d":[{"b":1,"a":2}],"c":0}})"), R"({"x":{"c":0,"d":[{"a":2,"b":1}]}})");
}

TEST(CanonicalJson, KeepsNumbersAsWritten) {
  EXPECT_EQ(Canon(R"([0,-0,1.50,1e400,1E+2,-12.5e-3,18446744073709551616])"),
            R"([0,-0,1.50,1e400,1E+2,-12.5e-3,18446744073709551616])");
  EXPECT_TRUE(Rejects("[01]"));
  EXPECT_TRUE(Rejects("[1.]"));
  EXPECT_TRUE(Rejects("[.5]"));
  EXPECT_TRUE(Rejects("[+1]"));
  EXPECT_TRUE(Rejects("[1e]"));
  EXPECT_TRUE(Rejects("[-]"));
  EXPECT_TRUE(Rejects("[NaN]"));
  EXPECT_TRUE(Json::Number("1.5").ok());
  EXPECT_FALSE(Json::Number("1.5x").ok());
}

TEST(CanonicalJson, EscapesOnlyWhatMustBeEscaped) {
  EXPECT_EQ(Canon(R"(["\u0041\/\u00e9\ud83d\ude00"])"), "[\"A/é\xF0\x9F\x98\x80\"]");
  EXPECT_EQ(Canon(R"(["\"\\\b\f\n\r\t\u0001\u001F\u007f"])"),
            "[\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"]");
  // Canonical output is a fixed point.
  const std::string once = Canon(R"({"k":"a\u0000b","l":[1,{"m":"\u2028"}]})");
  EXPECT_EQ(Canon(once), once);
  EXPECT_EQ(once, "{\"k\":\"a\\u0000b\",\"l\":[1,{\"m\":\"\xE2\x80\xA8\"}]}");
}

TEST(CanonicalJson, RejectsAmbiguousOrInvalidInput) {
  EXPECT_TRUE(Rejects(R"({"a":1,"a":2})"));       // duplicate keys
  EXPECT_TRUE(Rejects(R"({"a":1,"\u0061":2})"));  // duplicate after unescaping
  EXPECT_TRUE(Rejects("[\"\xC3\"]"));             // truncated UTF-8
  EXPECT_TRUE(Rejects("[\"\xC0\xAF\"]"));         // overlong
  EXPECT_TRUE(Rejects("[\"\xED\xA0\x80\"]"));     // raw surrogate
  EXPECT_TRUE(Rejects(R"(["\ud800"])"));          // lone high surrogate escape
  EXPECT_TRUE(Rejects(R"(["\udc00"])"));          // lone low surrogate escape
  EXPECT_TRUE(Rejects(R"(["\ud800\u0041"])"));    // bad pair
  EXPECT_TRUE(Rejects("[\"a\tb\"]"));             // raw control character
  EXPECT_TRUE(Rejects(R"(["\x"])"));
  EXPECT_TRUE(Rejects(R"(["\u12"])"));
  EXPECT_TRUE(Rejects("{\"a\":1,}"));
  EXPECT_TRUE(Rejects("[1,]"));
  EXPECT_TRUE(Rejects("{} {}"));
  EXPECT_TRUE(Rejects(""));
  EXPECT_TRUE(Rejects("tru"));
  EXPECT_TRUE(Rejects("{\"a\" 1}"));
  EXPECT_TRUE(Rejects("\xEF\xBB\xBF{}"));  // BOM
}

TEST(CanonicalJson, LimitsDepth) {
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_FALSE(Rejects(ok));
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_TRUE(Rejects(deep));
}

TEST(JsonObject, SetEraseFind) {
  Json o = Json::Object();
  o.Set("seq", Json::Uint(18446744073709551615ull));
  o.Set("b", Json::Bool(true));
  o.Set("a", Json::String("x"));
  o.Set("b", Json::Null());
  EXPECT_EQ(CanonicalJson(o), R"({"a":"x","b":null,"seq":18446744073709551615})");
  EXPECT_EQ(o.Find("seq")->AsUint(), 18446744073709551615ull);
  EXPECT_TRUE(o.Erase("a"));
  EXPECT_FALSE(o.Erase("a"));
  EXPECT_EQ(o.Find("a"), nullptr);
  Result<Json> big = ParseJson("18446744073709551616");
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(big->AsUint().has_value());
  EXPECT_FALSE(ParseJson("1.0")->AsUint().has_value());
  EXPECT_FALSE(ParseJson("-1")->AsUint().has_value());
}

}  // namespace
}  // namespace strongroom::audit
