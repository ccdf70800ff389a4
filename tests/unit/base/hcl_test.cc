// Tests for the HCL-subset / JSON parser (base/hcl.h). The policy cases check the syntax of
// vault-api.md section 7.1 (policy language), the config cases a Vault server config file.
#include "base/hcl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace strongroom::hcl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A position-free rendering, for comparing the HCL and JSON forms of the same document.
std::string Render(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString:
      return absl::StrCat("\"", v.str, "\"");
    case Value::Kind::kNumber:
      return absl::StrCat(v.number);
    case Value::Kind::kBool:
      return v.boolean ? "true" : "false";
    case Value::Kind::kList: {
      std::string out = "[";
      for (const Value& item : v.list) absl::StrAppend(&out, Render(item), ",");
      return out + "]";
    }
    case Value::Kind::kObject: {
      std::string out = "{";
      for (const auto& [key, item] : v.object) absl::StrAppend(&out, key, "=", Render(item), ";");
      return out + "}";
    }
  }
  return "?";
}

std::string Render(const std::vector<Attribute>& attributes, const std::vector<Block>& blocks) {
  std::string out;
  for (const Attribute& a : attributes) absl::StrAppend(&out, a.key, "=", Render(a.value), "\n");
  for (const Block& b : blocks) {
    absl::StrAppend(&out, b.type);
    for (const std::string& label : b.labels) absl::StrAppend(&out, " \"", label, "\"");
    absl::StrAppend(&out, " {\n", Render(b.attributes, b.blocks), "}\n");
  }
  return out;
}

std::string Render(const Body& body) { return Render(body.attributes, body.blocks); }

std::vector<std::string> Strings(const Value& list) {
  std::vector<std::string> out;
  for (const Value& v : list.list) {
    EXPECT_EQ(v.kind, Value::Kind::kString);
    out.push_back(v.str);
  }
  return out;
}

void ExpectAt(const Position& pos, int line, int column) {
  EXPECT_EQ(pos.line, line);
  EXPECT_EQ(pos.column, column);
}

Body MustParse(std::string_view text) {
  absl::StatusOr<Body> body = Parse(text);
  EXPECT_TRUE(body.ok()) << body.status();
  return body.ok() ? *std::move(body) : Body{};
}

constexpr std::string_view kAgentPolicy =
    R"(path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
)";

constexpr std::string_view kLobstackPolicy =
    R"(path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
)";

// Section 7.1: reference policy for agents, including an identity template in the path.
TEST(HclPolicy, AgentReferencePolicy) {
  const Body body = MustParse(kAgentPolicy);
  EXPECT_TRUE(body.attributes.empty());
  ASSERT_EQ(body.blocks.size(), 3u);
  const char* const paths[] = {
      "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}",
      "transit/encrypt/agent-data",
      "transit/decrypt/agent-data",
  };
  const char* const caps[] = {"read", "update", "update"};
  for (size_t i = 0; i < 3; ++i) {
    const Block& b = body.blocks[i];
    EXPECT_EQ(b.type, "path");
    EXPECT_THAT(b.labels, ::testing::ElementsAre(paths[i]));
    ExpectAt(b.pos, static_cast<int>(i) + 1, 1);
    ASSERT_EQ(b.attributes.size(), 1u);
    EXPECT_TRUE(b.blocks.empty());
    EXPECT_EQ(b.attributes[0].key, "capabilities");
    ASSERT_EQ(b.attributes[0].value.kind, Value::Kind::kList);
    EXPECT_THAT(Strings(b.attributes[0].value), ::testing::ElementsAre(caps[i]));
  }
  // `path "transit/encrypt/agent-data" { capabilities = ["update"] }`
  ExpectAt(body.blocks[1].attributes[0].pos, 2, 37);
  ExpectAt(body.blocks[1].attributes[0].value.pos, 2, 52);
  ExpectAt(body.blocks[1].attributes[0].value.list[0].pos, 2, 53);
}

TEST(HclPolicy, LobstackReferencePolicy) {
  const Body body = MustParse(kLobstackPolicy);
  ASSERT_EQ(body.blocks.size(), 4u);
  EXPECT_THAT(body.blocks[0].labels, ::testing::ElementsAre("secret/data/lobstack/api-keys"));
  EXPECT_THAT(body.blocks[1].labels, ::testing::ElementsAre("secret/data/lobstack/agent/*"));
  EXPECT_THAT(Strings(body.blocks[1].attributes[0].value),
              ::testing::ElementsAre("create", "read", "update", "delete", "list"));
  EXPECT_THAT(body.blocks[2].labels, ::testing::ElementsAre("transit/encrypt/lobstack"));
  EXPECT_THAT(body.blocks[3].labels, ::testing::ElementsAre("transit/decrypt/lobstack"));
  EXPECT_THAT(Strings(body.blocks[3].attributes[0].value), ::testing::ElementsAre("update"));
  ExpectAt(body.blocks[3].pos, 4, 1);
  ExpectAt(body.blocks[3].attributes[0].pos, 4, 35);
}

// Section 7.1's full syntax sample: object-valued parameters, legacy `policy`, TTL strings.
TEST(HclPolicy, FullPathSyntax) {
  const Body body = MustParse(R"(
name = "app"
path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
  allowed_parameters  = { "ttl" = ["1h","2h"], "*" = [] }
  denied_parameters   = { "force" = [] }
  required_parameters = ["role"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "90m"
}
path "sys/legacy" { policy = "read" }
)");
  ASSERT_EQ(body.attributes.size(), 1u);
  EXPECT_EQ(body.attributes[0].key, "name");
  ASSERT_EQ(body.blocks.size(), 2u);
  const Block& app = body.blocks[0];
  ASSERT_EQ(app.attributes.size(), 6u);
  const Value& allowed = app.attributes[1].value;
  EXPECT_EQ(app.attributes[1].key, "allowed_parameters");
  ASSERT_EQ(allowed.kind, Value::Kind::kObject);
  ExpectAt(allowed.pos, 5, 25);
  ASSERT_EQ(allowed.object.size(), 2u);
  EXPECT_EQ(allowed.object[0].first, "ttl");
  EXPECT_THAT(Strings(allowed.object[0].second), ::testing::ElementsAre("1h", "2h"));
  EXPECT_EQ(allowed.object[1].first, "*");
  EXPECT_EQ(allowed.object[1].second.kind, Value::Kind::kList);
  EXPECT_TRUE(allowed.object[1].second.list.empty());
  EXPECT_EQ(app.attributes[5].value.str, "90m");
  EXPECT_EQ(body.blocks[1].attributes[0].key, "policy");
  EXPECT_EQ(body.blocks[1].attributes[0].value.str, "read");
}

TEST(HclConfig, VaultServerConfig) {
  const Body body = MustParse(R"(# strongroom server configuration
ui = true
disable_mlock = false
api_addr = "https://vault.example.internal:8200"
cluster_addr = "https://10.0.0.5:8201"
default_lease_ttl = "768h"
max_request_size = 33554432
log_level = "info"

listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }

listener "tcp" {
  address       = "0.0.0.0:8201"
  tls_cert_file = "/etc/strongroom/tls.crt"
  tls_key_file  = "/etc/strongroom/tls.key"
  telemetry {
    unauthenticated_metrics_access = true
  }
}

storage "rocksdb" { path = "/var/lib/x" }

seal "pkcs11" {
  lib            = "/usr/lib/softhsm/libsofthsm2.so"
  slot           = 0
  pin            = "env://PIN"
  key_label      = "strongroom-unseal"
  hmac_key_label = "strongroom-hmac"
}

telemetry {
  prometheus_retention_time = "30s"
  sample_ratio = 0.25
}
)");
  ASSERT_EQ(body.attributes.size(), 7u);
  EXPECT_EQ(body.attributes[0].key, "ui");
  EXPECT_EQ(body.attributes[0].value.kind, Value::Kind::kBool);
  EXPECT_TRUE(body.attributes[0].value.boolean);
  EXPECT_FALSE(body.attributes[1].value.boolean);
  EXPECT_EQ(body.attributes[2].value.str, "https://vault.example.internal:8200");
  ExpectAt(body.attributes[2].pos, 4, 1);
  ExpectAt(body.attributes[2].value.pos, 4, 12);
  EXPECT_EQ(body.attributes[5].value.kind, Value::Kind::kNumber);
  EXPECT_EQ(body.attributes[5].value.number, 33554432);
  EXPECT_EQ(body.attributes[5].value.str, "33554432");

  ASSERT_EQ(body.blocks.size(), 5u);
  const Block& l1 = body.blocks[0];
  EXPECT_EQ(l1.type, "listener");
  EXPECT_THAT(l1.labels, ::testing::ElementsAre("tcp"));
  ExpectAt(l1.pos, 10, 1);
  ASSERT_EQ(l1.attributes.size(), 2u);
  EXPECT_EQ(l1.attributes[0].value.str, "127.0.0.1:8200");
  EXPECT_EQ(l1.attributes[1].key, "tls_disable");
  ExpectAt(l1.attributes[1].pos, 10, 45);
  EXPECT_TRUE(l1.attributes[1].value.boolean);

  const Block& l2 = body.blocks[1];
  ASSERT_EQ(l2.blocks.size(), 1u);
  EXPECT_EQ(l2.blocks[0].type, "telemetry");
  EXPECT_TRUE(l2.blocks[0].labels.empty());
  ExpectAt(l2.blocks[0].pos, 16, 3);
  EXPECT_EQ(l2.blocks[0].attributes[0].key, "unauthenticated_metrics_access");

  EXPECT_EQ(body.blocks[2].type, "storage");
  EXPECT_EQ(body.blocks[2].attributes[0].value.str, "/var/lib/x");
  const Block& seal = body.blocks[3];
  EXPECT_THAT(seal.labels, ::testing::ElementsAre("pkcs11"));
  ASSERT_EQ(seal.attributes.size(), 5u);
  EXPECT_EQ(seal.attributes[1].value.number, 0);
  EXPECT_EQ(seal.attributes[2].value.str, "env://PIN");
  EXPECT_EQ(body.blocks[4].attributes[1].value.number, 0.25);
}

TEST(HclSyntax, EmptyAndBlankDocuments) {
  EXPECT_EQ(Render(MustParse("")), "");
  EXPECT_EQ(Render(MustParse(" \n\t\r\n")), "");
  EXPECT_EQ(Render(MustParse("# only a comment")), "");
  EXPECT_EQ(Render(MustParse("/* only */ // comments\n")), "");
}

TEST(HclSyntax, AllThreeCommentKinds) {
  const Body body = MustParse(
      "# hash comment\n"
      "a = 1 # trailing hash\n"
      "// slash comment\n"
      "b = /* inline */ 2 // trailing slash\n"
      "/* block\n"
      "   comment spanning lines, with \"quotes\", { braces } and ✓ */ c = 3\n"
      "d = \"# not a comment // nor this /* nor this */\"\n"
      "# comment with CRLF\r\n"
      "e = 4 # at end of input without newline");
  ASSERT_EQ(body.attributes.size(), 5u);
  EXPECT_EQ(body.attributes[1].value.number, 2);
  ExpectAt(body.attributes[1].value.pos, 4, 18);
  EXPECT_EQ(body.attributes[2].key, "c");
  ExpectAt(body.attributes[2].pos, 6, 63);  // columns count characters: ✓ is one column
  EXPECT_EQ(body.attributes[3].value.str, "# not a comment // nor this /* nor this */");
  ExpectAt(body.attributes[4].pos, 9, 1);
}

TEST(HclSyntax, Heredocs) {
  const Body body = MustParse(
      "plain = <<EOF\n"
      "line one\n"
      "  indented \"quoted\" ${not_interpolated} \\n\n"
      "EOF\n"
      "indented = <<-EOT\n"
      "    first\n"
      "      second\n"
      "\n"
      "    third\n"
      "    EOT\n"
      "crlf = <<END\r\n"
      "a\r\n"
      "END\r\n"
      "empty = <<X\n"
      "X\n"
      "not_end = <<EOF\n"
      " EOF\n"
      "EOFX\n"
      "EOF\n"
      "after = 1\n");
  ASSERT_EQ(body.attributes.size(), 6u);
  EXPECT_EQ(body.attributes[0].value.str,
            "line one\n  indented \"quoted\" ${not_interpolated} \\n\n");
  ExpectAt(body.attributes[0].value.pos, 1, 9);
  EXPECT_EQ(body.attributes[1].value.str, "first\n  second\n\nthird\n");
  EXPECT_EQ(body.attributes[2].value.str, "a\n");
  EXPECT_EQ(body.attributes[3].value.str, "");
  // Without '-', an indented anchor or a longer word is content, not the terminator.
  EXPECT_EQ(body.attributes[4].value.str, " EOF\nEOFX\n");
  ExpectAt(body.attributes[5].pos, 20, 1);
}

TEST(HclSyntax, Escapes) {
  const Body body = MustParse(
      R"(a = "quote \" backslash \\ slash \/ nl \n tab \t cr \r bs \b ff \f"
b = "\u00e9\u263A\uD83D\uDE00 raw é ✓ 😀"
c = "{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.service_account_name}}"
)");
  EXPECT_EQ(body.attributes[0].value.str,
            "quote \" backslash \\ slash / nl \n tab \t cr \r bs \b ff \f");
  EXPECT_EQ(body.attributes[1].value.str, "é☺😀 raw é ✓ 😀");
  EXPECT_EQ(body.attributes[2].value.str,
            "{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.service_account_name}}");
}

TEST(HclSyntax, NestedObjectsAndLists) {
  const Body body = MustParse(R"(
matrix = [[1, 2], [], [[true]], [{ a = "x" }]]
config = {
  inner = { deeper = { leaf: "v", "quoted key" = [1.5, -2] } }
  list  = [{ k = 1 }, { k = 2 }]
}
)");
  ASSERT_EQ(body.attributes.size(), 2u);
  EXPECT_EQ(Render(body.attributes[0].value), "[[1,2,],[],[[true,],],[{a=\"x\";},],]");
  EXPECT_EQ(Render(body.attributes[1].value),
            "{inner={deeper={leaf=\"v\";quoted key=[1.5,-2,];};};list=[{k=1;},{k=2;},];}");
  const Value& deeper = body.attributes[1].value.object[0].second.object[0].second;
  ExpectAt(deeper.pos, 4, 22);
  ExpectAt(deeper.object[1].second.list[1].pos, 4, 56);
}

TEST(HclSyntax, TrailingAndSeparatingCommas) {
  const Body body = MustParse(R"(
list = ["a", "b",]
multi = [
  "x",
  "y",
]
obj = { a = 1, b = 2, }
obj_nl = {
  a = 1
  b = 2
}
path "p" { capabilities = ["read"], policy = "read", }
)");
  EXPECT_EQ(Render(body),
            "list=[\"a\",\"b\",]\nmulti=[\"x\",\"y\",]\nobj={a=1;b=2;}\nobj_nl={a=1;b=2;}\n"
            "path \"p\" {\ncapabilities=[\"read\",]\npolicy=\"read\"\n}\n");
}

TEST(HclSyntax, NamesQuotedKeysAndLabels) {
  const Body body = MustParse(R"(
"quoted" = 1
dotted.name-with_dash = 2
listener tcp { }
multi "a" b "c" { x = 1 }
"path" "sys/*" { }
)");
  ASSERT_EQ(body.attributes.size(), 2u);
  EXPECT_EQ(body.attributes[0].key, "quoted");
  EXPECT_EQ(body.attributes[1].key, "dotted.name-with_dash");
  ASSERT_EQ(body.blocks.size(), 3u);
  EXPECT_THAT(body.blocks[0].labels, ::testing::ElementsAre("tcp"));
  EXPECT_THAT(body.blocks[1].labels, ::testing::ElementsAre("a", "b", "c"));
  EXPECT_EQ(body.blocks[2].type, "path");
}

TEST(HclSyntax, DuplicateKeysAreKeptInOrder) {
  const Body body = MustParse("a = 1\na = 2\nb { }\nb { }\nc = { k = 1, k = 2 }\n");
  ASSERT_EQ(body.attributes.size(), 3u);
  EXPECT_EQ(body.attributes[0].value.number, 1);
  EXPECT_EQ(body.attributes[1].value.number, 2);
  EXPECT_EQ(body.blocks.size(), 2u);
  EXPECT_EQ(body.attributes[2].value.object.size(), 2u);
}

TEST(HclSyntax, Numbers) {
  const Body body = MustParse(
      "a = 0\nb = -7\nc = 1.25\nd = 6.02e23\ne = -1E-3\nf = 9007199254740991\n"
      "g = -9007199254740991\nh = 1.7976931348623157e308\n");
  ASSERT_EQ(body.attributes.size(), 8u);
  EXPECT_EQ(body.attributes[0].value.number, 0);
  EXPECT_EQ(body.attributes[1].value.number, -7);
  EXPECT_EQ(body.attributes[1].value.str, "-7");
  EXPECT_EQ(body.attributes[2].value.number, 1.25);
  EXPECT_EQ(body.attributes[3].value.number, 6.02e23);
  EXPECT_EQ(body.attributes[4].value.number, -1e-3);
  EXPECT_EQ(body.attributes[5].value.number, 9007199254740991.0);
  EXPECT_EQ(body.attributes[6].value.number, -9007199254740991.0);
  EXPECT_EQ(body.attributes[7].value.str, "1.7976931348623157e308");
}

TEST(HclSyntax, ColumnsCountCharactersAndTabsAndCrlf) {
  EXPECT_EQ(Parse("a = \"日本\" @").status().message(),
            "line 1, column 10: expected a name, string, number or punctuation, found "
            "character '@'");
  EXPECT_THAT(std::string(Parse("\ta = @").status().message()), StartsWith("line 1, column 6: "));
  EXPECT_THAT(std::string(Parse("a = 1\r\nb = @\r\n").status().message()),
              StartsWith("line 2, column 5: "));
}

TEST(HclSyntax, DepthLimit) {
  auto nested_blocks = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "b { ";
    for (int i = 0; i < n; ++i) s += "} ";
    return s;
  };
  EXPECT_TRUE(Parse(nested_blocks(64)).ok());
  // The 65th '{' is at column 4 * 64 + 3.
  EXPECT_EQ(Parse(nested_blocks(65)).status().message(),
            "line 1, column 259: nesting too deep: expected at most 64 nested blocks, lists "
            "and objects, found more");

  // One block, one object, then lists: 64 in all is fine, 65 is not.
  auto mixed = [](int lists) {
    return absl::StrCat("b { a = { k = ", std::string(lists, '['), std::string(lists, ']'), " } }");
  };
  EXPECT_TRUE(Parse(mixed(62)).ok());
  EXPECT_THAT(std::string(Parse(mixed(63)).status().message()),
              StartsWith("line 1, column 77: nesting too deep"));

  auto json = [](int arrays) {
    return absl::StrCat("{\"a\": ", std::string(arrays, '['), std::string(arrays, ']'), "}");
  };
  EXPECT_TRUE(Parse(json(63)).ok());
  EXPECT_THAT(std::string(Parse(json(64)).status().message()),
              StartsWith("line 1, column 70: nesting too deep"));
}

TEST(HclSyntax, DocumentSizeLimit) {
  std::string text(size_t{1} << 20, ' ');
  text.replace(0, 5, "a = 1");
  EXPECT_TRUE(Parse(text).ok());
  text.push_back(' ');
  EXPECT_EQ(Parse(text).status().message(),
            "line 1, column 1: expected a document of at most 1048576 bytes, found 1048577 bytes");
}

TEST(HclSyntax, ErrorsDoNotEchoStringValues) {
  // The second string is read as the key of a new item; it must still not be echoed.
  absl::StatusOr<Body> r = Parse("seal \"pkcs11\" { pin = \"1234\" \"s3cr3t-pin\" }");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr("s3cr3t")));
  EXPECT_EQ(r.status().message(),
            "line 1, column 43: expected '=', a block label or '{' after a quoted key, found '}'");
  r = Parse("a = { \"s3cr3t\" }");
  EXPECT_EQ(r.status().message(),
            "line 1, column 16: expected '=' or ':' after a quoted object key, found '}'");
  r = Parse("a = [\"s3cr3t\" \"other\"]");
  EXPECT_EQ(r.status().message(),
            "line 1, column 15: expected ',' or ']' after list element, found string");
}

TEST(HclSyntax, Where) { EXPECT_EQ(Where(Position{3, 7}), "line 3, column 7"); }

// --- JSON form -------------------------------------------------------------------------------

TEST(HclJson, ReferencePoliciesMatchHclForm) {
  const Body json = MustParse(R"(
  {
    "path": {
      "secret/data/lobstack/api-keys": { "capabilities": ["read"] },
      "secret/data/lobstack/agent/*": {
        "capabilities": ["create", "read", "update", "delete", "list"]
      },
      "transit/encrypt/lobstack": { "capabilities": ["update"] },
      "transit/decrypt/lobstack": { "capabilities": ["update"] }
    }
  })");
  EXPECT_EQ(Render(json), Render(MustParse(kLobstackPolicy)));
  ExpectAt(json.blocks[1].pos, 5, 7);
  ExpectAt(json.blocks[1].attributes[0].pos, 6, 9);
  ExpectAt(json.blocks[1].attributes[0].value.pos, 6, 25);

  const Body agent = MustParse(
      "{\"path\": {\"secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}\": "
      "{\"capabilities\": [\"read\"]}, \"transit/encrypt/agent-data\": {\"capabilities\": "
      "[\"update\"]}, \"transit/decrypt/agent-data\": {\"capabilities\": [\"update\"]}}}");
  EXPECT_EQ(Render(agent), Render(MustParse(kAgentPolicy)));
}

TEST(HclJson, ParametersStayAttributesInsideBlocks) {
  const Body json = MustParse(R"({
  "name": "app",
  "path": {
    "secret/data/app/*": {
      "capabilities": ["read"],
      "allowed_parameters": {"ttl": ["1h", "2h"], "*": []},
      "min_wrapping_ttl": "1m"
    },
    "only/params": { "allowed_parameters": { "ttl": [] } }
  }
})");
  const Body hcl = MustParse(R"(
name = "app"
path "secret/data/app/*" {
  capabilities = ["read"]
  allowed_parameters = { "ttl" = ["1h", "2h"], "*" = [] }
  min_wrapping_ttl = "1m"
}
path "only/params" { allowed_parameters = { ttl = [] } }
)");
  EXPECT_EQ(Render(json), Render(hcl));
}

TEST(HclJson, MappingRules) {
  const Body body = MustParse(R"(  {"api_addr": "https://x:8200", "ui": true, "cache_size": 1024,
 "plugins": ["a", "b"],
 "listener": [{"tcp": {"address": "127.0.0.1:8200", "tls_disable": true}},
              {"tcp": {"address": "0.0.0.0:8201"}}],
 "storage": {"rocksdb": {"path": "/var/lib/x"}},
 "telemetry": {"sample_ratio": 0.5, "tags": {"env": "prod"}},
 "empty": {},
 "dup": 1, "dup": 2})");
  EXPECT_EQ(Render(body),
            "api_addr=\"https://x:8200\"\nui=true\ncache_size=1024\nplugins=[\"a\",\"b\",]\n"
            "dup=1\ndup=2\n"
            "listener \"tcp\" {\naddress=\"127.0.0.1:8200\"\ntls_disable=true\n}\n"
            "listener \"tcp\" {\naddress=\"0.0.0.0:8201\"\n}\n"
            "storage \"rocksdb\" {\npath=\"/var/lib/x\"\n}\n"
            "telemetry {\nsample_ratio=0.5\ntags={env=\"prod\";}\n}\n"
            "empty {\n}\n");
  ExpectAt(body.attributes[0].pos, 1, 4);
  ExpectAt(body.blocks[0].pos, 3, 16);  // label key "tcp" of the first list element
  ExpectAt(body.blocks[3].pos, 6, 2);   // unlabelled block: its type key
}

TEST(HclJson, StringsAndNumbersFollowTheSameRules) {
  const Body body = MustParse(R"({"s": "a\u00e9\ud83d\ude00\n\/", "n": -1.5e2, "z": 0})");
  EXPECT_EQ(body.attributes[0].value.str, "aé😀\n/");
  EXPECT_EQ(body.attributes[1].value.number, -150);
  EXPECT_EQ(body.attributes[2].value.number, 0);
}

// --- Malformed input: each case names the exact position of the error --------------------------

struct BadCase {
  const char* name;
  std::string_view text;
  int line;
  int column;
  const char* fragment;  // part of the message after the position
};

class HclMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(HclMalformed, ReportsPosition) {
  const BadCase& c = GetParam();
  absl::StatusOr<Body> result = Parse(c.text);
  ASSERT_FALSE(result.ok()) << c.text;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(result.status().message());
  EXPECT_THAT(message, StartsWith(absl::StrFormat("line %d, column %d: ", c.line, c.column)));
  EXPECT_THAT(message, HasSubstr(c.fragment));
}

const BadCase kBadCases[] = {
    {"MissingEquals", "path \"secret/*\" {\n  capabilities [\"read\"]\n}\n", 2, 16,
     "expected '=', a block label or '{' after key \"capabilities\", found '['"},
    {"UnclosedBlock", "path \"a\" {\n  capabilities = [\"read\"]\n", 3, 1,
     "expected '}' to close the block opened at line 1, column 10, found end of input"},
    {"StrayCloseBrace", "a = 1\n}\n", 2, 1, "expected an attribute or block name, found '}'"},
    {"TrailingGarbageAfterValue", "a = 1 2\n", 1, 7,
     "expected an attribute or block name, found number"},
    {"UnterminatedStringAtEol", "a = 1\nb = \"abc\nc = 2\n", 2, 5,
     "unterminated string: expected a closing '\"', found end of line"},
    {"UnterminatedStringAtEof", "b = \"abc", 1, 5,
     "unterminated string: expected a closing '\"', found end of input"},
    {"UnterminatedBlockComment", "a = 1\n  /* never\nclosed\n", 2, 3,
     "unterminated comment: expected \"*/\" to close it, found end of input"},
    {"UnterminatedHeredoc", "a = 1\nx = <<EOF\nhello\nEOF \n", 2, 5,
     "unterminated heredoc: expected a line containing only \"EOF\", found end of input"},
    {"HeredocAnchorNotAtEol", "x = <<EOF junk\nEOF\n", 1, 10,
     "expected end of line after heredoc anchor \"EOF\", found character ' '"},
    {"HeredocWithoutAnchor", "x = <<\nEOF\n", 1, 7,
     "expected a heredoc anchor name after '<<', found end of line"},
    {"BadEscape", "a = \"x\\qy\"", 1, 7, "invalid escape: expected one of"},
    {"ShortUnicodeEscape", "a = \"\\u12G4\"", 1, 10,
     "expected 4 hex digits after \\u, found character 'G'"},
    {"LoneLowSurrogate", "a = \"\\udc00\"", 1, 6, "found lone low surrogate \\uDC00"},
    {"UnpairedHighSurrogate", "a = \"\\ud83dx\"", 1, 12,
     "expected a low surrogate \\uDC00-\\uDFFF after \\uD83D, found character 'x'"},
    {"EscapedNul", "a = \"\\u0000\"", 1, 6, "found \\u0000"},
    {"InvalidUtf8InString", "a = \"ok\xff\"", 1, 8,
     "expected valid UTF-8 in string, found byte 0xff"},
    {"OverlongUtf8Slash", "a = \"\xc0\xaf\"", 1, 6,
     "expected valid UTF-8 in string, found byte 0xc0"},
    {"Utf8EncodedSurrogate", "a = \"\xed\xa0\x80\"", 1, 6, "found byte 0xed"},
    {"TruncatedUtf8AtEof", "a = \"\xe2\x9c", 1, 6, "found byte 0xe2"},
    {"InvalidUtf8InComment", "# fine\n# bad \xfe\n", 2, 7,
     "expected valid UTF-8 in comment, found byte 0xfe"},
    {"RawTabInString", "a = \"x\ty\"", 1, 7, "found control character U+0009"},
    {"ControlCharOutsideString", "a = 1\n\x01", 2, 1, "found control character U+0001"},
    {"ControlCharInComment", "# ok\n# bad \x07\n", 2, 7,
     "expected a printable character in comment, found control character U+0007"},
    {"NulByteInString", std::string_view("a = \"x\0\"", 8), 1, 7, "control character U+0000"},
    {"FloatOutOfRange", "n = 1e999", 1, 5, "number out of range"},
    {"FloatUnderflow", "n = 1e-400", 1, 5, "number out of range"},
    {"IntegerOutOfRange", "limits {\n  n = 9007199254740992\n}", 2, 7,
     "number out of range: expected an integer between"},
    {"LeadingZero", "mode = 0755", 1, 8, "expected a number without leading zeros"},
    {"UnquotedDuration", "ttl = 10h", 1, 9, "found character 'h'"},
    {"MissingFractionDigits", "n = 1.", 1, 7,
     "expected a digit after '.' in number, found end of input"},
    {"MissingExponentDigits", "n = 2e+", 1, 8, "expected a digit in the exponent"},
    {"LoneMinus", "n = -x", 1, 6, "expected a digit after '-', found character 'x'"},
    {"BareWordValue", "policy = read", 1, 10,
     "expected a value (string, number, bool, list or object), found name \"read\""},
    {"MissingValue", "a =\n", 2, 1, "found end of input"},
    {"MissingCommaInList", "a = [\"x\" \"y\"]", 1, 10,
     "expected ',' or ']' after list element, found string"},
    {"UnclosedList", "a = [1,\n", 2, 1, "expected a value"},
    {"ObjectKeyWithoutEquals", "a = { b 1 }", 1, 9,
     "expected '=' or ':' after object key \"b\", found number"},
    {"ObjectBadKey", "a = { [ }", 1, 7, "expected an object key or '}', found '['"},
    {"LabelsWithoutBody", "path \"a\" \"b\" = 1", 1, 14,
     "expected '{' or another label after the block labels, found '='"},
    {"NonAsciiName", "\xc3\xa9t\xc3\xa9 = 1", 1, 1, "found character U+00E9"},
    {"ByteOrderMark",
     "\xef\xbb\xbf"
     "a = 1",
     1, 1, "found character U+FEFF"},
    {"StrayCharacter", "a = 1 @", 1, 7, "found character '@'"},
    {"JsonTrailingComma", "{\"a\": [1,]}", 1, 10, "found ']'"},
    {"JsonTrailingCommaInObject", "{\"a\": 1,\n}", 2, 1,
     "expected a string key in JSON object, found '}'"},
    {"JsonNull", "{\"path\": null}", 1, 10, "found null"},
    {"JsonComment", "{\"a\": 1 # no comments in JSON\n}", 1, 9,
     "expected a JSON value or punctuation, found character '#'"},
    {"JsonUnquotedKey", "{a: 1}", 1, 2, "expected a string key in JSON object, found name \"a\""},
    {"JsonMissingColon", "{\"a\" 1}", 1, 6, "expected ':' after JSON object key, found number"},
    {"JsonMissingComma", "{\"a\": 1 \"b\": 2}", 1, 9,
     "expected ',' or '}' after JSON object member"},
    {"JsonEqualsInsteadOfColon", "{\"a\" = 1}", 1, 6, "found '='"},
    {"JsonTrailingGarbage", "{\"a\": 1}\n{}", 2, 1,
     "expected end of input after the JSON document, found '{'"},
    {"JsonUnclosed", "\n\n  {\"a\": [1, 2]", 3, 15,
     "expected ',' or '}' after JSON object member, found end of input"},
    {"JsonHeredocNotAllowed", "{\"a\": <<EOF\nx\nEOF\n}", 1, 7, "found character '<'"},
};

INSTANTIATE_TEST_SUITE_P(Cases, HclMalformed, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& case_info) {
                           return std::string(case_info.param.name);
                         });

}  // namespace
}  // namespace strongroom::hcl
