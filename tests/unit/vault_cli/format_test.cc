// The `vault` CLI's flag parsing and output layouts, as the CLI reproduces them. Whole commands
// against a real server are tested end to end (tests/e2e/cli.test.js).
#include "cli/vault/format.h"

#include <gtest/gtest.h>

#include "cli/vault/flags.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

TEST(FlagSetTest, GoFlagSyntax) {
  FlagSet f;
  std::string s;
  bool b = false;
  int64_t n = 0, ttl = 0;
  std::vector<std::string> list;
  std::map<std::string, std::string> meta;
  f.String("mount", &s);
  f.Bool("force", &b);
  f.Int("version", &n);
  f.Duration("ttl", &ttl);
  f.Strings("policy", &list, /*split_commas=*/false);
  f.Map("metadata", &meta);
  ASSERT_TRUE(f.Parse({"-mount=secret", "--force", "-version", "3", "-ttl=1h30m", "-policy=a",
                       "-policy", "b,c", "-metadata=team=ops", "path", "-x=1"})
                  .ok());
  EXPECT_EQ(s, "secret");
  EXPECT_TRUE(b);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(ttl, 5400);
  EXPECT_EQ(list, (std::vector<std::string>{"a", "b,c"}));
  EXPECT_EQ(meta.at("team"), "ops");
  // Parsing stops at the first positional argument, as Go's flag package.
  EXPECT_EQ(f.args(), (std::vector<std::string>{"path", "-x=1"}));
  EXPECT_TRUE(f.Given("ttl"));
  FlagSet h;
  ASSERT_TRUE(h.Parse({"--", "-a"}).ok());
  EXPECT_EQ(h.args(), (std::vector<std::string>{"-a"}));
}

TEST(FlagSetTest, ErrorsAreGoTexts) {
  FlagSet f;
  int64_t n = 0;
  bool b = false;
  f.Int("version", &n);
  f.Bool("force", &b);
  EXPECT_EQ(f.Parse({"-nope"}).message(), "flag provided but not defined: -nope");
  EXPECT_EQ(f.Parse({"-version"}).message(), "flag needs an argument: -version");
  EXPECT_EQ(f.Parse({"-version=x"}).message(),
            "invalid value \"x\" for flag -version: parse error");
  EXPECT_EQ(f.Parse({"-force=maybe"}).message(),
            "invalid value \"maybe\" for flag -force: parse error");
  EXPECT_TRUE(absl::IsCancelled(f.Parse({"-help"})));
  FlagSet g;
  std::vector<std::string> split;
  g.Strings("versions", &split);
  ASSERT_TRUE(g.Parse({"-versions=1, 2", "-versions=3"}).ok());
  EXPECT_EQ(split, (std::vector<std::string>{"1", "2", "3"}));
}

TEST(FlagSetTest, Durations) {
  int64_t s = 0;
  EXPECT_TRUE(ParseDurationSeconds("90", &s).ok());
  EXPECT_EQ(s, 90);
  EXPECT_TRUE(ParseDurationSeconds("768h", &s).ok());
  EXPECT_EQ(s, 768 * 3600);
  EXPECT_TRUE(ParseDurationSeconds("7d", &s).ok());
  EXPECT_EQ(s, 7 * 86400);
  EXPECT_FALSE(ParseDurationSeconds("106752d", &s).ok());  // beyond a Go duration
  EXPECT_FALSE(ParseDurationSeconds("-5s", &s).ok());
  EXPECT_FALSE(ParseDurationSeconds("inf", &s).ok());
  EXPECT_FALSE(ParseDurationSeconds("2562048h", &s).ok());
  EXPECT_FALSE(ParseDurationSeconds("", &s).ok());
}

TEST(FormatTest, TablesAreColumnizeWithFourSpaces) {
  const std::string d(kDelim);
  EXPECT_EQ(Table({"Key" + d + "Value", "refresh_interval" + d + "768h", "foo" + d + "bar",
                   "empty" + d + ""},
                  kDelim),
            "Key                 Value\n"
            "---                 -----\n"
            "refresh_interval    768h\n"
            "foo                 bar\n"
            "empty               n/a\n");
  EXPECT_EQ(Table({"Keys", "a", "bb/"}, kDelim), "Keys\n----\na\nbb/\n");
}

TEST(FormatTest, HumanDurationsAsVaultPrintsThem) {
  EXPECT_EQ(HumanDuration(0), "0s");
  EXPECT_EQ(HumanDuration(45), "45s");
  EXPECT_EQ(HumanDuration(90), "1m30s");
  EXPECT_EQ(HumanDuration(3600), "1h");
  EXPECT_EQ(HumanDuration(3630), "1h30s");
  EXPECT_EQ(HumanDuration(3660), "1h1m");
  EXPECT_EQ(HumanDuration(2764800), "768h");
  EXPECT_TRUE(LooksLikeDuration("ttl"));
  EXPECT_TRUE(LooksLikeDuration("token_max_ttl"));
  EXPECT_TRUE(LooksLikeDuration("period"));
  EXPECT_FALSE(LooksLikeDuration("ttl_seconds"));
  EXPECT_EQ(CellValue("ttl", json::value(3600)), "1h");
  EXPECT_EQ(CellValue("ttl", json::value("1h")), "1h");
  EXPECT_EQ(CellValue("version", json::value(3600)), "3600");
}

TEST(FormatTest, GoValuesAndJson) {
  json::value v = json::parse(R"({"b":[1,"x",true,null],"a":{"z":1.5,"y":"<&>"}})");
  EXPECT_EQ(GoValue(v), "map[a:map[y:<&> z:1.5] b:[1 x true <nil>]]");
  EXPECT_EQ(JsonIndent(v),
            "{\n"
            "  \"a\": {\n"
            "    \"y\": \"\\u003c\\u0026\\u003e\",\n"
            "    \"z\": 1.5\n"
            "  },\n"
            "  \"b\": [\n"
            "    1,\n"
            "    \"x\",\n"
            "    true,\n"
            "    null\n"
            "  ]\n"
            "}");
  // A Go struct keeps its field order; a key the server sends cannot change that.
  json::object ordered;
  ordered["z"] = 1;
  ordered["a"] = json::object{{"y", 1}, {"x", 2}};
  ordered["\x01"] = 3;
  EXPECT_EQ(JsonIndent(ordered, JsonOrder{true, {"a"}}),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": 1,\n    \"x\": 2\n  },\n  \"\\u0001\": 3\n}");
  EXPECT_EQ(JsonIndent(ordered),
            "{\n  \"\\u0001\": 3,\n  \"a\": {\n    \"x\": 2,\n    \"y\": 1\n  },\n  \"z\": 1\n}");
}

TEST(FormatTest, YamlQuotesWhatWouldReadBackAsAnotherType) {
  json::value v =
      json::parse(R"({"keys":["a","b"],"n":"1","ok":"true","s":"plain","e":"","m":{}})");
  EXPECT_EQ(Yaml(v),
            "e: \"\"\n"
            "keys:\n"
            "- a\n"
            "- b\n"
            "m: {}\n"
            "\"n\": \"1\"\n"
            "ok: \"true\"\n"
            "s: plain");
}

TEST(FormatTest, YamlNestsSequencesAsYamlV2) {
  json::value v = json::parse(R"({"a":[{"k":1,"l":[2,3]},[4,5],"s"],"b":{"c":{"d":[]}}})");
  EXPECT_EQ(Yaml(v),
            "a:\n"
            "- k: 1\n"
            "  l:\n"
            "  - 2\n"
            "  - 3\n"
            "- - 4\n"
            "  - 5\n"
            "- s\n"
            "b:\n"
            "  c:\n"
            "    d: []");
}

TEST(FormatTest, TablesEscapeTerminalControls) {
  const std::string d(kDelim);
  EXPECT_EQ(Table({"Key" + d + "Value", "k" + d +
                                            "a\x1b]52;c;aGk=\x07"
                                            "b\xc2\x9b"
                                            "c"},
                  kDelim),
            "Key    Value\n---    -----\nk      a\\x1b]52;c;aGk=\\x07b\\u009bc\n");
  EXPECT_EQ(EscapeControls("line1\nline2\tx\x7f"), "line1\nline2\tx\\x7f");
}

TEST(FormatTest, KvHeaders) {
  EXPECT_EQ(PadEqualSigns("Secret Path", 17), "== Secret Path ==");
  EXPECT_EQ(PadEqualSigns("Secret Path", 5), "== Secret Path ==");
  json::object data{{"custom_metadata", 1}, {"version", 2}};
  EXPECT_EQ(HeaderForMap("Metadata", data), "======= Metadata =======");
}

TEST(FormatTest, GoTimeStringOfRfc3339) {
  EXPECT_EQ(GoTimeString("2026-12-07T12:54:52Z"), "2026-12-07 12:54:52 +0000 UTC");
  EXPECT_EQ(GoTimeString("2021-06-23T08:22:57.454404848Z"),
            "2021-06-23 08:22:57.454404848 +0000 UTC");
  EXPECT_EQ(GoTimeString("2021-06-23T08:22:57.500Z"), "2021-06-23 08:22:57.5 +0000 UTC");
  EXPECT_EQ(GoTimeString("2022-03-02T15:08:36.8151591-05:00"),
            "2022-03-02 15:08:36.8151591 -0500 -0500");
  for (const char* odd :
       {"", "yesterday", "2026-12-07 12:54:52Z", "2026-12-07T12:54:52", "2026-12-07T12:54:52.Z",
        "2026-12-07T12:54:52.1234567891Z", "2026-12-07T12:54:52+0500"}) {
    EXPECT_EQ(GoTimeString(odd), odd);
  }
}

// `vault ... -wrap-ttl`: the table's wrapping rows (wrapped_accessor only for a wrapped token),
// -format=json's wrap_info in api.SecretWrapInfo's order.
TEST(FormatTest, WrappedResponses) {
  auto s = client::ParseSecret(R"({"request_id":"","lease_id":"","lease_duration":0,
    "renewable":false,"data":null,"warnings":null,"auth":null,
    "wrap_info":{"wrapped_accessor":"","creation_path":"secret/data/app","ttl":300,
                 "accessor":"acc","creation_time":"2026-12-07T12:54:52Z","token":"hvs.w"}})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SecretTable(*s),
            "Key                              Value\n"
            "---                              -----\n"
            "wrapping_token:                  hvs.w\n"
            "wrapping_accessor:               acc\n"
            "wrapping_token_ttl:              5m\n"
            "wrapping_token_creation_time:    2026-12-07 12:54:52 +0000 UTC\n"
            "wrapping_token_creation_path:    secret/data/app\n");
  EXPECT_EQ(JsonIndent(SecretValue(*s), SecretOrder()),
            "{\n"
            "  \"request_id\": \"\",\n"
            "  \"lease_id\": \"\",\n"
            "  \"lease_duration\": 0,\n"
            "  \"renewable\": false,\n"
            "  \"data\": null,\n"
            "  \"warnings\": null,\n"
            "  \"wrap_info\": {\n"
            "    \"token\": \"hvs.w\",\n"
            "    \"accessor\": \"acc\",\n"
            "    \"ttl\": 300,\n"
            "    \"creation_time\": \"2026-12-07T12:54:52Z\",\n"
            "    \"creation_path\": \"secret/data/app\",\n"
            "    \"wrapped_accessor\": \"\"\n"
            "  }\n"
            "}");
  s->wrap_info->wrapped_accessor = "inner";
  EXPECT_NE(SecretTable(*s).find("\nwrapped_accessor:                inner\n"), std::string::npos)
      << SecretTable(*s);
}

TEST(PathsTest, SanitizeAndEscape) {
  EXPECT_EQ(SanitizePath(" /secret/foo/ "), "secret/foo");
  EXPECT_EQ(QueryEscape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
}

}  // namespace
}  // namespace strongroom::vault
