// Parser tests for policy/policy.h: vault-api.md section 7.1 (policy language), including the two
// reference policies of DESIGN.md's workload, the JSON form and the legacy `policy` keyword.
#include "policy/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "policy/builtin_policies.h"

namespace strongroom::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The per-agent policy, verbatim.
constexpr std::string_view kAgentPolicy =
    R"(path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
)";

// The platform's own policy, verbatim.
constexpr std::string_view kLobstackPolicy =
    R"(path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
)";

// The section 7.1 sample.
constexpr std::string_view kSamplePolicy = R"(path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
  allowed_parameters  = { "ttl" = ["1h","2h"], "*" = [] }
  denied_parameters   = { "force" = [] }
  required_parameters = ["role"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "90m"
}
)";

Policy MustParse(std::string_view text, std::string_view name = "p") {
  absl::StatusOr<Policy> p = ParsePolicy(name, text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Policy{};
}

std::vector<std::string> Strings(const std::vector<ParamValue>& values) {
  std::vector<std::string> out;
  for (const ParamValue& v : values) {
    EXPECT_EQ(v.kind, ParamValue::Kind::kString);
    out.push_back(v.str);
  }
  return out;
}

TEST(ParsePolicyTest, AgentReferencePolicy) {
  const Policy p = MustParse(kAgentPolicy, "agent");
  EXPECT_EQ(p.name, "agent");
  EXPECT_TRUE(p.templated);
  ASSERT_EQ(p.paths.size(), 3u);
  EXPECT_EQ(p.paths[0].path, "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}");
  EXPECT_TRUE(p.paths[0].templated);
  EXPECT_FALSE(p.paths[0].is_prefix);
  EXPECT_FALSE(p.paths[0].has_segment_wildcards);
  EXPECT_EQ(p.paths[0].capabilities, kCapRead);
  EXPECT_EQ(p.paths[0].pos.line, 1);
  EXPECT_EQ(p.paths[1].path, "transit/encrypt/agent-data");
  EXPECT_FALSE(p.paths[1].templated);
  EXPECT_EQ(p.paths[1].capabilities, kCapUpdate);
  EXPECT_EQ(p.paths[1].pos.line, 2);
  EXPECT_EQ(p.paths[2].path, "transit/decrypt/agent-data");
  EXPECT_EQ(p.paths[2].capabilities, kCapUpdate);
}

TEST(ParsePolicyTest, LobstackReferencePolicy) {
  const Policy p = MustParse(kLobstackPolicy, "lobstack");
  EXPECT_FALSE(p.templated);
  ASSERT_EQ(p.paths.size(), 4u);
  EXPECT_EQ(p.paths[0].path, "secret/data/lobstack/api-keys");
  EXPECT_EQ(p.paths[0].capabilities, kCapRead);
  EXPECT_EQ(p.paths[1].path, "secret/data/lobstack/agent/*");
  EXPECT_TRUE(p.paths[1].is_prefix);
  EXPECT_EQ(p.paths[1].capabilities, kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList);
  EXPECT_EQ(CapabilityNames(p.paths[1].capabilities),
            (std::vector<std::string>{"create", "delete", "list", "read", "update"}));
  EXPECT_EQ(p.paths[2].path, "transit/encrypt/lobstack");
  EXPECT_EQ(p.paths[3].path, "transit/decrypt/lobstack");
  EXPECT_EQ(p.paths[3].capabilities, kCapUpdate);
}

TEST(ParsePolicyTest, SamplePolicyAllFields) {
  const Policy p = MustParse(kSamplePolicy);
  ASSERT_EQ(p.paths.size(), 1u);
  const PathRule& r = p.paths[0];
  EXPECT_EQ(r.capabilities, kCapCreate | kCapRead | kCapUpdate | kCapPatch | kCapDelete | kCapList);
  ASSERT_EQ(r.allowed_parameters.size(), 2u);
  EXPECT_THAT(Strings(r.allowed_parameters.at("ttl")), ElementsAre("1h", "2h"));
  EXPECT_THAT(r.allowed_parameters.at("*"), IsEmpty());
  ASSERT_EQ(r.denied_parameters.size(), 1u);
  EXPECT_THAT(r.denied_parameters.at("force"), IsEmpty());
  EXPECT_THAT(r.required_parameters, ElementsAre("role"));
  EXPECT_EQ(r.min_wrapping_ttl, 60);
  EXPECT_EQ(r.max_wrapping_ttl, 5400);
}

TEST(ParsePolicyTest, JsonFormMatchesHcl) {
  const Policy json = MustParse(R"({
    "path": {
      "secret/data/app/*": {
        "capabilities": ["create", "read", "update", "patch", "delete", "list"],
        "allowed_parameters": {"ttl": ["1h", "2h"], "*": []},
        "denied_parameters": {"force": []},
        "required_parameters": ["role"],
        "min_wrapping_ttl": "1m",
        "max_wrapping_ttl": 5400
      },
      "transit/encrypt/app": {"capabilities": ["update"]}
    }
  })");
  const Policy hcl = MustParse(kSamplePolicy);
  ASSERT_EQ(json.paths.size(), 2u);
  const PathRule& a = json.paths[0];
  const PathRule& b = hcl.paths[0];
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.is_prefix, b.is_prefix);
  EXPECT_EQ(a.capabilities, b.capabilities);
  EXPECT_EQ(Strings(a.allowed_parameters.at("ttl")), Strings(b.allowed_parameters.at("ttl")));
  EXPECT_TRUE(a.allowed_parameters.contains("*"));
  EXPECT_TRUE(a.denied_parameters.contains("force"));
  EXPECT_EQ(a.required_parameters, b.required_parameters);
  EXPECT_EQ(a.min_wrapping_ttl, b.min_wrapping_ttl);
  EXPECT_EQ(a.max_wrapping_ttl, b.max_wrapping_ttl);
  EXPECT_EQ(json.paths[1].path, "transit/encrypt/app");
  EXPECT_EQ(json.paths[1].capabilities, kCapUpdate);
}

TEST(ParsePolicyTest, JsonReferencePolicy) {
  const Policy p = MustParse(R"({"path": {
    "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}": {"capabilities": ["read"]},
    "transit/encrypt/agent-data": {"capabilities": ["update"]}}})");
  EXPECT_TRUE(p.templated);
  ASSERT_EQ(p.paths.size(), 2u);
  EXPECT_TRUE(p.paths[0].templated);
}

// vault-api.md 7.1: read = read+list; write = create+read+update+delete+list; sudo = write+sudo.
TEST(ParsePolicyTest, LegacyPolicyKeyword) {
  const CapabilitySet kWrite = kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList;
  struct Case {
    std::string_view text;
    CapabilitySet want;
  } cases[] = {
      {R"(path "a" { policy = "read" })", kCapRead | kCapList},
      {R"(path "a" { policy = "write" })", kWrite},
      {R"(path "a" { policy = "sudo" })", kWrite | kCapSudo},
      {R"(path "a" { policy = "deny" })", kCapDeny},
      // The keyword adds to an explicit list ...
      {R"(path "a" { policy = "read"  capabilities = ["patch"] })",
       kCapRead | kCapList | kCapPatch},
      // ... except "deny", which replaces it.
      {R"(path "a" { policy = "deny"  capabilities = ["read"] })", kCapDeny},
  };
  for (const Case& c : cases) {
    const Policy p = MustParse(c.text);
    ASSERT_EQ(p.paths.size(), 1u) << c.text;
    EXPECT_EQ(p.paths[0].capabilities, c.want) << c.text;
  }
}

TEST(ParsePolicyTest, DenyDropsEverythingElse) {
  const Policy p = MustParse(R"(path "secret/*" {
    capabilities = ["read", "deny", "sudo"]
    allowed_parameters = { "a" = [] }
    required_parameters = ["x"]
    max_wrapping_ttl = 60
  })");
  const PathRule& r = p.paths[0];
  EXPECT_EQ(r.capabilities, kCapDeny);
  EXPECT_TRUE(r.allowed_parameters.empty());
  EXPECT_TRUE(r.required_parameters.empty());
  EXPECT_EQ(r.max_wrapping_ttl, 0);
}

TEST(ParsePolicyTest, PathShapes) {
  struct Case {
    std::string_view label;
    std::string_view path;
    bool prefix;
    bool segments;
  } cases[] = {
      {"/secret/foo", "secret/foo", false, false},  // one leading '/' is stripped
      {"secret/*", "secret/*", true, false},
      {"*", "*", true, false},
      {"secret/+/bar", "secret/+/bar", false, true},
      {"+/bar", "+/bar", false, true},
      {"+", "+", false, true},
      {"secret/+/bar/*", "secret/+/bar/*", true, true},
      {"secret/+x", "secret/+x", false, true},  // Vault's test: "/+" marks it
      {"secret/a+b", "secret/a+b", false, false},
      {"", "", false, false},
  };
  for (const Case& c : cases) {
    const Policy p = MustParse(std::string("path \"") + std::string(c.label) + "\" {}");
    ASSERT_EQ(p.paths.size(), 1u);
    EXPECT_EQ(p.paths[0].path, c.path) << c.label;
    EXPECT_EQ(p.paths[0].is_prefix, c.prefix) << c.label;
    EXPECT_EQ(p.paths[0].has_segment_wildcards, c.segments) << c.label;
    EXPECT_EQ(p.paths[0].capabilities, 0u);
  }
}

TEST(ParsePolicyTest, MiscAccepted) {
  EXPECT_TRUE(MustParse("").paths.empty());
  EXPECT_TRUE(MustParse("# only a comment\n").paths.empty());
  EXPECT_TRUE(MustParse("{}").paths.empty());
  // `name` is accepted and ignored (the caller's name wins).
  EXPECT_EQ(MustParse(R"(name = "other" path "a" {})", "mine").name, "mine");
  // Block form of the parameter maps, comments, subscribe, mixed-case parameter names.
  const Policy p = MustParse(R"(
path "events/*" {
  comment = "event streams"
  capabilities = ["subscribe", "list"]
  subscribe_event_types = ["kv*"]
  allowed_parameters {
    "TTL" = ["1h", 3600, true, ["x"], {"k" = "v"}]
  }
}
path "events/*" { capabilities = ["read"] }
)");
  ASSERT_EQ(p.paths.size(), 2u);
  EXPECT_EQ(p.paths[0].capabilities, kCapSubscribe | kCapList);
  EXPECT_THAT(p.paths[0].subscribe_event_types, ElementsAre("kv*"));
  const std::vector<ParamValue>& ttl = p.paths[0].allowed_parameters.at("ttl");
  ASSERT_EQ(ttl.size(), 5u);
  EXPECT_EQ(ttl[1].kind, ParamValue::Kind::kNumber);
  EXPECT_EQ(ttl[1].number, 3600);
  EXPECT_EQ(ttl[2].kind, ParamValue::Kind::kBool);
  EXPECT_EQ(ttl[3].kind, ParamValue::Kind::kList);
  EXPECT_EQ(ttl[4].kind, ParamValue::Kind::kObject);
}

TEST(ParsePolicyTest, BuiltinPoliciesParse) {
  const Policy def = MustParse(kDefaultPolicyText, kDefaultPolicyName);
  EXPECT_TRUE(def.templated);
  EXPECT_EQ(def.paths.size(), 16u);
  const Policy wrapping = MustParse(kResponseWrappingPolicyText, kResponseWrappingPolicyName);
  EXPECT_FALSE(wrapping.templated);
  ASSERT_EQ(wrapping.paths.size(), 2u);
  EXPECT_EQ(wrapping.paths[0].path, "cubbyhole/response");
  EXPECT_EQ(wrapping.paths[0].capabilities, kCapCreate | kCapRead);
}

// Every error, with the exact message and position.
TEST(ParsePolicyTest, Errors) {
  struct Case {
    std::string_view text;
    std::string_view message;
  } cases[] = {
      {"path \"secret/foo\" {\n  capabilities = [\n    \"reed\",\n  ]\n}\n",
       "line 3, column 5: invalid capability \"reed\""},
      // Validated even after "deny" (Vault stops looking at "deny").
      {"path \"a\" {\n  capabilities = [\"deny\", \"Read\"]\n}",
       "line 2, column 27: invalid capability \"Read\""},
      {"path \"a\" { capabilities = \"read\" }",
       "line 1, column 27: capabilities must be a list of strings"},
      {"path \"a\" { capabilities = [\"read\", 1] }",
       "line 1, column 36: capabilities must be a list of strings"},
      {"path \"a\" {}\nfoo = 1\n", "line 2, column 1: invalid key \"foo\""},
      {"\nvault \"x\" {}\n", "line 2, column 1: invalid key \"vault\""},
      {"path = \"a\"", "line 1, column 1: path must be a block: path \"<path>\" { ... }"},
      {"name = 1", "line 1, column 8: name must be a string"},
      {"name = \"a\"\nname = \"b\"", "line 2, column 1: duplicate key \"name\""},
      {"path {}",
       "line 1, column 1: a path block takes exactly one label: path \"<path>\" { ... }"},
      {"path \"a\" \"b\" {}",
       "line 1, column 1: a path block takes exactly one label: path \"<path>\" { ... }"},
      {"path \"a\" {\n  capabilities = [\"read\"]\n  capabilites = [\"list\"]\n}",
       "line 3, column 3: invalid key \"capabilites\""},
      {"path \"a\" {\n  nested { }\n}", "line 2, column 3: invalid key \"nested\""},
      {"path \"a\" {\n  allowed_parameters \"ttl\" { }\n}",
       "line 2, column 3: allowed_parameters must be an object"},
      {"path \"a\" {\n  mfa_methods = [\"totp\"]\n}",
       "line 2, column 3: key \"mfa_methods\" is not supported"},
      {"path \"a\" {\n  control_group { }\n}",
       "line 2, column 3: key \"control_group\" is not supported"},
      {"path \"a\" {\n  expiration = \"2030-01-01T00:00:00Z\"\n}",
       "line 2, column 3: key \"expiration\" is not supported"},
      {"path \"a\" {\n  capabilities = []\n  capabilities = [\"read\"]\n}",
       "line 3, column 3: duplicate key \"capabilities\""},
      {"path \"a\" { policy = \"admin\" }", "line 1, column 21: invalid policy \"admin\""},
      {"path \"a\" { policy = [\"read\"] }", "line 1, column 21: policy must be a string"},
      {"path \"a\" { comment = 1 }", "line 1, column 22: comment must be a string"},
      {"\npath \"secret/+*\" {}",
       "line 2, column 1: path \"secret/+*\": invalid use of wildcards ('+*' is forbidden)"},
      {"path \"secret/*/foo\" {}",
       "line 1, column 1: path \"secret/*/foo\": invalid use of wildcards ('*' is only allowed "
       "at the end)"},
      {"path \"secret/{{identity.entity.id\" {}",
       "line 1, column 1: path \"secret/{{identity.entity.id\": unbalanced templating "
       "characters"},
      {"path \"secret/identity.entity.id}}\" {}",
       "line 1, column 1: path \"secret/identity.entity.id}}\": unbalanced templating "
       "characters"},
      {"path \"secret/{{identity.entity.id}}}}\" {}",
       "line 1, column 1: path \"secret/{{identity.entity.id}}}}\": unbalanced templating "
       "characters"},
      {"path \"secret/{{identity.entity.metdata.agent_id}}\" {}",
       "line 1, column 1: path \"secret/{{identity.entity.metdata.agent_id}}\": invalid template "
       "\"identity.entity.metdata.agent_id\""},
      {"path \"a\" { allowed_parameters = [\"ttl\"] }",
       "line 1, column 33: allowed_parameters must be an object"},
      {"path \"a\" { denied_parameters = { \"ttl\" = \"1h\" } }",
       "line 1, column 42: denied_parameters: the values of parameter \"ttl\" must be a list"},
      {"path \"a\" {\n  allowed_parameters = { \"ttl\" = [], \"TTL\" = [\"1h\"] }\n}",
       "line 2, column 46: allowed_parameters: duplicate parameter \"TTL\""},
      {"path \"a\" { required_parameters = \"role\" }",
       "line 1, column 34: required_parameters must be a list of strings"},
      {"path \"a\" { min_wrapping_ttl = \"soon\" }",
       "line 1, column 31: invalid min_wrapping_ttl: invalid duration \"soon\""},
      {"path \"a\" { max_wrapping_ttl = \"-1m\" }",
       "line 1, column 31: invalid max_wrapping_ttl: duration must not be negative"},
      {"path \"a\" { max_wrapping_ttl = \"1.5s\" }",
       "line 1, column 31: invalid max_wrapping_ttl: duration must be a whole number of seconds"},
      {"path \"a\" { max_wrapping_ttl = 1.5 }",
       "line 1, column 31: invalid max_wrapping_ttl: must be a non-negative whole number of "
       "seconds"},
      {"path \"a\" { max_wrapping_ttl = true }",
       "line 1, column 31: invalid max_wrapping_ttl: must be a duration"},
      {"path \"a\" {\n  min_wrapping_ttl = \"2h\"\n  max_wrapping_ttl = \"1h\"\n}",
       "line 1, column 1: max_wrapping_ttl cannot be less than min_wrapping_ttl"},
      // JSON form: positions point at the member key.
      {"{\"path\": {\n  \"a\": {\"capabilities\": [\"reed\"]}}}",
       "line 2, column 26: invalid capability \"reed\""},
      {"{\"path\": {\"a\": {\"capabilities\": [\"read\"]}},\n \"policy\": \"read\"}",
       "line 2, column 2: invalid key \"policy\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Policy> p = ParsePolicy("p", c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(std::string(p.status().message()),
              std::string("failed to parse policy: ") + std::string(c.message))
        << c.text;
  }
}

TEST(ParsePolicyTest, SyntaxErrorsCarryHclPosition) {
  absl::StatusOr<Policy> p = ParsePolicy("p", "path \"a\" {\n  capabilities = [\"read\"\n");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      std::string(p.status().message()).starts_with("failed to parse policy: line 3, column"))
      << p.status();
}

TEST(ParseDurationSecondsTest, VaultSyntax) {
  struct Case {
    std::string_view text;
    int64_t want;  // -1: error
  } cases[] = {
      {"", 0},
      {"0", 0},
      {"90", 90},
      {"+5", 5},
      {"1m", 60},
      {"90m", 5400},
      {"1h30m", 5400},
      {"1.5h", 5400},
      {"2d", 172800},
      {"1500ms", -1},
      {"2000ms", 2},
      {"0.5m", 30},
      {"1h0m0s", 3600},
      {".5m", 30},
      {"-1", -1},
      {"-1m", -1},
      {"1", 1},
      {"abc", -1},
      {"1x", -1},
      {"m", -1},
      {"1.5d", -1},
      {" 1m", -1},
      {"1m ", -1},
      {"5.", -1},
      {"9223372036854775807", -1},
      {"2562047h", 2562047 * int64_t{3600}},
      {"2562048h", -1},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> got = ParseDurationSeconds(c.text);
    if (c.want < 0) {
      EXPECT_FALSE(got.ok()) << c.text;
    } else {
      ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
      EXPECT_EQ(*got, c.want) << c.text;
    }
  }
}

TEST(CapabilityTest, NamesRoundTripSorted) {
  EXPECT_EQ(CapabilityNames(kCapUpdate | kCapRead | kCapSudo | kCapCreate),
            (std::vector<std::string>{"create", "read", "sudo", "update"}));
  for (std::string_view name :
       {"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"}) {
    const CapabilitySet bit = CapabilityFromName(name);
    ASSERT_NE(bit, 0u) << name;
    EXPECT_EQ(CapabilityNames(bit), std::vector<std::string>{std::string(name)});
  }
  EXPECT_EQ(CapabilityFromName("root"), 0u);
  EXPECT_EQ(CapabilityFromName("READ"), 0u);
  EXPECT_EQ(CapabilityFromName("scan"), 0u);
}

}  // namespace
}  // namespace strongroom::policy
