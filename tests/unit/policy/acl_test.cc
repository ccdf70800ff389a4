// ACL evaluation (policy/acl.h) against vault-api.md section 7.2 (matching and precedence, from
// Vault's acl.go) and the examples of Vault's policy documentation ("Policy syntax": overlapping
// globs, '+' segments, the priority rules, parameter constraints, wrapping TTLs).
#include "policy/acl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/builtin_policies.h"

namespace strongroom::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct NamedText {
  std::string name;
  std::string text;
};

std::vector<Policy> ParseAll(const std::vector<NamedText>& texts) {
  std::vector<Policy> out;
  for (const NamedText& t : texts) {
    absl::StatusOr<Policy> p = ParsePolicy(t.name, t.text);
    EXPECT_TRUE(p.ok()) << t.name << ": " << p.status();
    if (p.ok()) out.push_back(*std::move(p));
  }
  return out;
}

Acl MustBuild(const std::vector<NamedText>& texts, const IdentityContext* identity = nullptr) {
  absl::StatusOr<Acl> acl = Acl::Create(ParseAll(texts), identity);
  EXPECT_TRUE(acl.ok()) << acl.status();
  return *std::move(acl);
}

ParamEntry S(std::string key, std::string value) {
  return {std::move(key), ParamValue::String(std::move(value))};
}
ParamEntry N(std::string key, double value) { return {std::move(key), ParamValue::Number(value)}; }
ParamEntry B(std::string key, bool value) { return {std::move(key), ParamValue::Bool(value)}; }

struct Case {
  std::string name;
  std::vector<NamedText> policies;
  std::string path;
  Operation op = Operation::kRead;
  bool allowed = false;
  std::string matched = "";  // expected matched_path; "-" = none; "" = not checked
  std::vector<ParamEntry> data = {};
  std::optional<int64_t> wrap_ttl = std::nullopt;
  bool root_protected = false;
};

std::string PrintCase(const testing::TestParamInfo<Case>& info) { return info.param.name; }

class AclTableTest : public testing::TestWithParam<Case> {};

TEST_P(AclTableTest, Decides) {
  const Case& c = GetParam();
  const Acl acl = MustBuild(c.policies);
  AclRequest req;
  req.path = c.path;
  req.operation = c.op;
  req.data = c.data;
  req.wrap_ttl = c.wrap_ttl;
  req.root_protected = c.root_protected;
  const AclResult r = acl.Allowed(req);
  EXPECT_EQ(r.allowed, c.allowed) << "reason: " << r.reason;
  EXPECT_EQ(r.reason.empty(), r.allowed) << r.reason;
  if (c.matched == "-") {
    EXPECT_EQ(r.matched_path, "");
  } else if (!c.matched.empty()) {
    EXPECT_EQ(r.matched_path, c.matched);
  }
}

const char kSecretStarRead[] = R"(path "secret/*" { capabilities = ["read"] })";
const char kSecretFooUpdate[] = R"(path "secret/foo" { capabilities = ["update"] })";

// The five tie-breakers of 7.2 step b, each isolated: both rules match the request path and agree
// on every earlier criterion. Rule order in the text is irrelevant; each pair is written with the
// winner second and first.
const std::vector<NamedText> kTie1 = {
    {"p",
     R"(path "foo/+" { capabilities = ["read"] } path "foo/a*" { capabilities = ["update"] })"}};
const std::vector<NamedText> kTie1b = {{"p", R"(path "foo/bar/+/baz" { capabilities = ["update"] }
             path "foo/+/bar/baz" { capabilities = ["read"] })"}};
const std::vector<NamedText> kTie2 = {{"p", R"(path "foo/+/bar" { capabilities = ["update"] }
             path "foo/+/ba*" { capabilities = ["read"] })"}};
const std::vector<NamedText> kTie2b = {
    {"p",
     R"(path "foo/*" { capabilities = ["read"] } path "foo/+" { capabilities = ["update"] })"}};
const std::vector<NamedText> kTie3 = {{"p", R"(path "foo/+/+/baz" { capabilities = ["read"] }
             path "foo/+/bar/baz" { capabilities = ["update"] })"}};
const std::vector<NamedText> kTie4 = {{"p", R"(path "foo/+/bar/ba*" { capabilities = ["update"] }
             path "foo/+/bar/b*" { capabilities = ["read"] })"}};
const std::vector<NamedText> kTie5 = {{"p", R"(path "a/+/c/+" { capabilities = ["update"] }
             path "a/+/+/d" { capabilities = ["read"] })"}};

const char kParams[] = R"(
path "secret/data/app" {
  capabilities = ["create", "update", "read", "list"]
  allowed_parameters = {
    "ttl"  = ["1h", "2h"]
    "name" = ["foo-*", "*-bar", "*mid*"]
    "n"    = [1, 2]
    "flag" = [true]
    "any"  = []
  }
  denied_parameters = { "force" = [], "mode" = ["unsafe-*"] }
})";
const char kParamsStar[] = R"(
path "secret/data/app" {
  capabilities = ["update"]
  allowed_parameters = { "*" = [], "ttl" = ["1h"] }
})";
const char kAllowAll[] = R"(
path "secret/data/app" {
  capabilities = ["update"]
  allowed_parameters = { "*" = [] }
})";
const char kDenyAll[] = R"(
path "secret/data/app" {
  capabilities = ["update", "list"]
  denied_parameters = { "*" = [] }
  required_parameters = ["role"]
})";
const char kRequired[] = R"(
path "auth/approle/login" {
  capabilities = ["update"]
  required_parameters = ["role_id", "Secret_ID"]
})";
const char kWrapping[] = R"(
path "sys/wrapping/wrap" {
  capabilities = ["update"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "90m"
})";

INSTANTIATE_TEST_SUITE_P(
    Vault, AclTableTest,
    testing::ValuesIn(std::vector<Case>{
        // --- overlapping globs: one rule, never merged across paths --------------------------
        {.name = "GlobVsExact_ExactWins_Read",
         .policies = {{"a", kSecretStarRead}, {"b", kSecretFooUpdate}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "secret/foo"},
        {.name = "GlobVsExact_ExactWins_Update",
         .policies = {{"a", kSecretStarRead}, {"b", kSecretFooUpdate}},
         .path = "secret/foo",
         .op = Operation::kUpdate,
         .allowed = true},
        {.name = "GlobVsExact_GlobForOthers",
         .policies = {{"a", kSecretStarRead}, {"b", kSecretFooUpdate}},
         .path = "secret/bar",
         .op = Operation::kRead,
         .allowed = true,
         .matched = "secret/*"},
        {.name = "GlobVsExact_GlobGrantsNoUpdate",
         .policies = {{"a", kSecretStarRead}, {"b", kSecretFooUpdate}},
         .path = "secret/bar",
         .op = Operation::kUpdate,
         .allowed = false},
        {.name = "GlobMatchesAcrossSlashes",
         .policies = {{"a", kSecretStarRead}},
         .path = "secret/a/b/c",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "GlobMatchesEmptyRest",
         .policies = {{"a", kSecretStarRead}},
         .path = "secret/",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "GlobNeedsItsPrefix",
         .policies = {{"a", kSecretStarRead}},
         .path = "secret",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "-"},
        {.name = "LongestPrefixWins",
         .policies = {{"a", R"(path "secret/*" { capabilities = ["read"] }
                               path "secret/team/*" { capabilities = ["list"] })"}},
         .path = "secret/team/x",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "secret/team/*"},
        {.name = "PlusVsGlob_LaterWildcardWins",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"},
                      {"b", R"(path "secret/foo/*" { capabilities = ["update"] })"}},
         .path = "secret/foo/bar",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "secret/foo/*"},
        {.name = "PlusVsGlob_GlobGrantsUpdate",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"},
                      {"b", R"(path "secret/foo/*" { capabilities = ["update"] })"}},
         .path = "secret/foo/bar",
         .op = Operation::kUpdate,
         .allowed = true},
        {.name = "PlusVsGlob_PlusElsewhere",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"},
                      {"b", R"(path "secret/foo/*" { capabilities = ["update"] })"}},
         .path = "secret/zip/bar",
         .op = Operation::kRead,
         .allowed = true,
         .matched = "secret/+/bar"},
        {.name = "PlusIsOneSegment",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"}},
         .path = "secret/a/b/bar",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "PlusNeedsAllSegments",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"}},
         .path = "secret/a/bar/baz",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "PlusMatchesEmptySegment",  // as in Vault
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] })"}},
         .path = "secret//bar",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "PlusWithTrailingGlob",
         .policies = {{"a", R"(path "secret/+/data/*" { capabilities = ["read"] })"}},
         .path = "secret/x/data/a/b",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "PlusWithTrailingPartialGlob",
         .policies = {{"a", R"(path "secret/+/da*" { capabilities = ["read"] })"}},
         .path = "secret/x/data/a",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "PlusWithTrailingGlobMismatch",
         .policies = {{"a", R"(path "secret/+/da*" { capabilities = ["read"] })"}},
         .path = "secret/x/meta/a",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "PlusSegmentLiteralWhenNotAlone",
         .policies = {{"a", R"(path "secret/+x" { capabilities = ["read"] })"}},
         .path = "secret/ax",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "PlusSegmentLiteralMatch",
         .policies = {{"a", R"(path "secret/+x" { capabilities = ["read"] })"}},
         .path = "secret/+x",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "LeadingPlus",
         .policies = {{"a", R"(path "+/config" { capabilities = ["read"] })"}},
         .path = "kv/config",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "ExactBeatsPlus",
         .policies = {{"a", R"(path "secret/+/bar" { capabilities = ["read"] }
                               path "secret/foo/bar" { capabilities = ["list"] })"}},
         .path = "secret/foo/bar",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "secret/foo/bar"},

        // --- the five tie-breakers ---------------------------------------------------------
        {.name = "Tie1_FirstWildcardLater_Wins",
         .policies = kTie1,
         .path = "foo/abc",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/a*"},
        {.name = "Tie1_FirstWildcardLater_Loser",
         .policies = kTie1,
         .path = "foo/abc",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "Tie1_DeeperPlusWins",
         .policies = kTie1b,
         .path = "foo/bar/bar/baz",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/bar/+/baz"},
        {.name = "Tie2_NonPrefixWins",
         .policies = kTie2,
         .path = "foo/x/bar",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/+/bar"},
        {.name = "Tie2_NonPrefixWins_Loser",
         .policies = kTie2,
         .path = "foo/x/bar",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "Tie2_PlusBeatsStar",
         .policies = kTie2b,
         .path = "foo/x",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/+"},
        {.name = "Tie2_StarStillCoversDeeper",
         .policies = kTie2b,
         .path = "foo/x/y",
         .op = Operation::kRead,
         .allowed = true,
         .matched = "foo/*"},
        {.name = "Tie3_FewerPlusWins",
         .policies = kTie3,
         .path = "foo/a/bar/baz",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/+/bar/baz"},
        {.name = "Tie3_FewerPlusWins_Loser",
         .policies = kTie3,
         .path = "foo/a/bar/baz",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "Tie3_OtherPathStillPlus",
         .policies = kTie3,
         .path = "foo/a/zzz/baz",
         .op = Operation::kRead,
         .allowed = true,
         .matched = "foo/+/+/baz"},
        {.name = "Tie4_LongerWins",
         .policies = kTie4,
         .path = "foo/x/bar/baz",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "foo/+/bar/ba*"},
        {.name = "Tie4_LongerWins_Loser",
         .policies = kTie4,
         .path = "foo/x/bar/baz",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "Tie4_ShorterWhenOnlyItMatches",
         .policies = kTie4,
         .path = "foo/x/bar/bz",
         .op = Operation::kRead,
         .allowed = true,
         .matched = "foo/+/bar/b*"},
        {.name = "Tie5_LexicographicallyGreaterWins",
         .policies = kTie5,
         .path = "a/b/c/d",
         .op = Operation::kUpdate,
         .allowed = true,
         .matched = "a/+/c/+"},
        {.name = "Tie5_Loser",
         .policies = kTie5,
         .path = "a/b/c/d",
         .op = Operation::kRead,
         .allowed = false},

        // --- deny ---------------------------------------------------------------------------
        {.name = "DenyOverridesSamePathAcrossPolicies",
         .policies = {{"a", R"(path "secret/foo" { capabilities = ["read", "sudo"] })"},
                      {"b", R"(path "secret/foo" { capabilities = ["deny"] })"}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "DenyFirstStillWins",
         .policies = {{"b", R"(path "secret/foo" { capabilities = ["deny"] })"},
                      {"a", R"(path "secret/foo" { capabilities = ["read"] })"}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "DenyOnExactLeavesGlob",
         .policies = {{"a", kSecretStarRead},
                      {"b", R"(path "secret/foo" { capabilities = ["deny"] })"}},
         .path = "secret/other",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "DenyGlobButExactReads",  // the more specific rule wins, even over deny
         .policies = {{"a", R"(path "secret/*" { capabilities = ["deny"] })"},
                      {"b", R"(path "secret/foo" { capabilities = ["read"] })"}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "DenySameRuleOtherCaps",
         .policies = {{"a", R"(path "secret/foo" { capabilities = ["read", "deny"] })"}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "LegacyDeny",
         .policies = {{"a", R"(path "secret/foo" { policy = "deny" })"},
                      {"b", R"(path "secret/foo" { policy = "write" })"}},
         .path = "secret/foo",
         .op = Operation::kCreate,
         .allowed = false},
        {.name = "MergeOrsCapabilities",
         .policies = {{"a", R"(path "secret/foo" { capabilities = ["read"] })"},
                      {"b", R"(path "secret/foo" { capabilities = ["update"] })"}},
         .path = "secret/foo",
         .op = Operation::kUpdate,
         .allowed = true},
        {.name = "PrefixAndExactOfSameStemNotMerged",
         .policies = {{"a", R"(path "secret/foo" { capabilities = ["read"] })"},
                      {"b", R"(path "secret/foo*" { capabilities = ["update"] })"}},
         .path = "secret/foo",
         .op = Operation::kUpdate,
         .allowed = false},

        // --- sudo on root-protected paths --------------------------------------------------
        {.name = "RootProtectedNeedsSudo",
         .policies = {{"a", R"(path "sys/audit/*" { capabilities = ["create", "update"] })"}},
         .path = "sys/audit/file",
         .op = Operation::kUpdate,
         .allowed = false,
         .root_protected = true},
        {.name = "RootProtectedWithSudo",
         .policies = {{"a", R"(path "sys/audit/*" { capabilities = ["update", "sudo"] })"}},
         .path = "sys/audit/file",
         .op = Operation::kUpdate,
         .allowed = true,
         .root_protected = true},
        {.name = "SudoAloneIsNotUpdate",
         .policies = {{"a", R"(path "sys/audit/*" { capabilities = ["sudo"] })"}},
         .path = "sys/audit/file",
         .op = Operation::kUpdate,
         .allowed = false,
         .root_protected = true},
        {.name = "SudoFromLegacySudo",
         .policies = {{"a", R"(path "sys/auth/*" { policy = "sudo" })"}},
         .path = "sys/auth/kubernetes",
         .op = Operation::kDelete,
         .allowed = true,
         .root_protected = true},
        {.name = "SudoNotNeededElsewhere",
         .policies = {{"a", R"(path "sys/mounts/*" { capabilities = ["update"] })"}},
         .path = "sys/mounts/kv",
         .op = Operation::kUpdate,
         .allowed = true},
        {.name = "RootPolicyOnRootProtected",
         .policies = {{"root", ""}},
         .path = "sys/audit/file",
         .op = Operation::kUpdate,
         .allowed = true,
         .root_protected = true},

        // --- list and the trailing slash --------------------------------------------------
        {.name = "ListTrailingSlashExactFallback",
         .policies = {{"a", R"(path "secret/metadata" { capabilities = ["list"] })"}},
         .path = "secret/metadata/",
         .op = Operation::kList,
         .allowed = true,
         .matched = "secret/metadata"},
        {.name = "ReadTrailingSlashNoFallback",
         .policies = {{"a", R"(path "secret/metadata" { capabilities = ["read", "list"] })"}},
         .path = "secret/metadata/",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "ListGlobCoversDirectory",
         .policies = {{"a", R"(path "secret/metadata/*" { capabilities = ["list"] })"}},
         .path = "secret/metadata/",
         .op = Operation::kList,
         .allowed = true},
        {.name = "ListPlusFallbackWithoutSlash",
         .policies = {{"a", R"(path "secret/+/team" { capabilities = ["list"] })"}},
         .path = "secret/x/team/",
         .op = Operation::kList,
         .allowed = true,
         .matched = "secret/+/team"},
        {.name = "ListSlashExactBeatsGlobWithout",
         .policies = {{"a", R"(path "secret/metadata/" { capabilities = ["list"] }
                               path "secret/metadata" { capabilities = ["read"] })"}},
         .path = "secret/metadata/",
         .op = Operation::kList,
         .allowed = true,
         .matched = "secret/metadata/"},
        {.name = "ListNeedsList",
         .policies = {{"a", R"(path "secret/metadata/*" { capabilities = ["read"] })"}},
         .path = "secret/metadata/",
         .op = Operation::kList,
         .allowed = false},

        // --- patch and the other operations ------------------------------------------------
        {.name = "PatchNeedsPatch",
         .policies = {{"a", R"(path "secret/data/app" { capabilities = ["update", "read"] })"}},
         .path = "secret/data/app",
         .op = Operation::kPatch,
         .allowed = false},
        {.name = "PatchGranted",
         .policies = {{"a", R"(path "secret/data/app" { capabilities = ["patch"] })"}},
         .path = "secret/data/app",
         .op = Operation::kPatch,
         .allowed = true},
        {.name = "PatchIsNotUpdate",
         .policies = {{"a", R"(path "secret/data/app" { capabilities = ["patch"] })"}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false},
        {.name = "CreateIsNotUpdate",
         .policies = {{"a", R"(path "secret/data/app" { capabilities = ["update"] })"}},
         .path = "secret/data/app",
         .op = Operation::kCreate,
         .allowed = false},
        {.name = "RenewNeedsUpdate",
         .policies = {{"a", R"(path "sys/leases/renew" { capabilities = ["update"] })"}},
         .path = "sys/leases/renew",
         .op = Operation::kRenew,
         .allowed = true},
        {.name = "RevokeNeedsUpdate",
         .policies = {{"a", R"(path "sys/leases/revoke" { capabilities = ["read"] })"}},
         .path = "sys/leases/revoke",
         .op = Operation::kRevoke,
         .allowed = false},
        {.name = "RollbackNeedsUpdate",
         .policies = {{"a", R"(path "x" { capabilities = ["update"] })"}},
         .path = "x",
         .op = Operation::kRollback,
         .allowed = true},
        {.name = "DeleteNeedsDelete",
         .policies = {{"a", R"(path "x" { capabilities = ["create", "update", "read"] })"}},
         .path = "x",
         .op = Operation::kDelete,
         .allowed = false},
        {.name = "LeadingSlashesIgnored",
         .policies = {{"a", R"(path "/secret/foo" { capabilities = ["read"] })"}},
         .path = "//secret/foo",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "NoRuleNoAccess",
         .policies = {{"a", kSecretStarRead}},
         .path = "transit/encrypt/k",
         .op = Operation::kUpdate,
         .allowed = false,
         .matched = "-"},
        {.name = "NoPolicies",
         .policies = {},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false},
        {.name = "EmptyCapabilitiesShadowGlob",  // a rule with no capabilities still wins
         .policies = {{"a", kSecretStarRead}, {"b", R"(path "secret/foo" {})"}},
         .path = "secret/foo",
         .op = Operation::kRead,
         .allowed = false,
         .matched = "secret/foo"},

        // --- parameters --------------------------------------------------------------------
        {.name = "ParamsEmptyBodyAllowed",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true},
        {.name = "ParamsListedValue",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("ttl", "2h")}},
        {.name = "ParamsUnlistedValue",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("ttl", "3h")}},
        {.name = "ParamsUnlistedKey",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kCreate,
         .allowed = false,
         .data = {S("ttl", "1h"), S("other", "x")}},
        {.name = "ParamsKeyCaseInsensitive",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("TTL", "1h")}},
        {.name = "ParamsValueCaseSensitive",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("ttl", "1H")}},
        {.name = "ParamsGlobPrefix",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("name", "foo-anything")}},
        {.name = "ParamsGlobSuffix",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("name", "x-bar")}},
        {.name = "ParamsGlobInfix",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("name", "xxmidyy")}},
        {.name = "ParamsGlobMiss",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("name", "bar-foo")}},
        {.name = "ParamsGlobNotForNonStrings",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {N("name", 1)}},
        {.name = "ParamsNumberEqual",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {N("n", 2)}},
        {.name = "ParamsNumberNotListed",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {N("n", 3)}},
        {.name = "ParamsNumberIsNotString",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("n", "2")}},
        {.name = "ParamsBool",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {B("flag", true)}},
        {.name = "ParamsBoolMiss",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {B("flag", false)}},
        {.name = "ParamsNullMatchesNothing",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {{"ttl", ParamValue::Null()}}},
        {.name = "ParamsEmptyListAnyValue",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {{"any", ParamValue::List({ParamValue::Null()})}}},
        {.name = "ParamsDeniedAnyValue",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {B("Force", false)}},
        {.name = "ParamsDeniedGlobValue",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("mode", "unsafe-fast")}},
        {.name = "ParamsDeniedOtherValueButNotAllowed",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("mode", "safe")}},
        {.name = "ParamsNotCheckedForList",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kList,
         .allowed = true,
         .data = {S("force", "yes")}},
        {.name = "ParamsCheckedForRead",
         .policies = {{"a", kParams}},
         .path = "secret/data/app",
         .op = Operation::kRead,
         .allowed = false,
         .data = {S("force", "yes")}},
        {.name = "ParamsStarPlusKey_OtherKeyOk",
         .policies = {{"a", kParamsStar}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("whatever", "x"), S("ttl", "1h")}},
        {.name = "ParamsStarPlusKey_KeyStillConstrained",
         .policies = {{"a", kParamsStar}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("whatever", "x"), S("ttl", "2h")}},
        {.name = "ParamsStarAlone",
         .policies = {{"a", kAllowAll}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("a", "1"), N("b", 2)}},
        {.name = "ParamsDenyStar",
         .policies = {{"a", kDenyAll}},
         .path = "secret/data/app",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("role", "x")}},
        {.name = "ParamsDenyStarNotForList",
         .policies = {{"a", kDenyAll}},
         .path = "secret/data/app",
         .op = Operation::kList,
         .allowed = true,
         .data = {S("role", "x")}},
        {.name = "ParamsRequiredMissing",
         .policies = {{"a", kRequired}},
         .path = "auth/approle/login",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("role_id", "r")}},
        {.name = "ParamsRequiredMissingEvenWhenEmpty",
         .policies = {{"a", kRequired}},
         .path = "auth/approle/login",
         .op = Operation::kUpdate,
         .allowed = false},
        {.name = "ParamsRequiredPresentLowerCased",
         .policies = {{"a", kRequired}},
         .path = "auth/approle/login",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("role_id", "r"), S("secret_id", "s")}},
        {.name = "ParamsRequiredDataKeyAsSent",
         .policies = {{"a", kRequired}},
         .path = "auth/approle/login",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("role_id", "r"), S("SECRET_ID", "s")}},
        {.name = "ParamsMergedAllowedUnion",
         .policies = {{"a", R"(path "p" { capabilities = ["update"]
                                          allowed_parameters = { "ttl" = ["1h"] } })"},
                      {"b", R"(path "p" { capabilities = ["update"]
                                          allowed_parameters = { "ttl" = ["2h"] } })"}},
         .path = "p",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("ttl", "2h")}},
        {.name = "ParamsMergedEmptyListWins",
         .policies = {{"a", R"(path "p" { capabilities = ["update"]
                                          allowed_parameters = { "ttl" = ["1h"] } })"},
                      {"b", R"(path "p" { capabilities = ["update"]
                                          allowed_parameters = { "ttl" = [] } })"}},
         .path = "p",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("ttl", "9h")}},
        {.name = "ParamsMergedDeniedUnion",
         .policies = {{"a", R"(path "p" { capabilities = ["update"]
                                          denied_parameters = { "x" = ["1"] } })"},
                      {"b", R"(path "p" { capabilities = ["update"]
                                          denied_parameters = { "y" = [] } })"}},
         .path = "p",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("y", "1")}},
        {.name = "ParamsMergedRequiredUnion",
         .policies = {{"a", R"(path "p" { capabilities = ["update"]
                                          required_parameters = ["x"] })"},
                      {"b", R"(path "p" { capabilities = ["update"]
                                          required_parameters = ["y"] })"}},
         .path = "p",
         .op = Operation::kUpdate,
         .allowed = false,
         .data = {S("x", "1")}},
        {.name = "ParamsNotFromOtherPath",  // the glob's constraint does not reach secret/foo
         .policies = {{"a", R"(path "secret/*" { capabilities = ["update"]
                                                 denied_parameters = { "x" = [] } })"},
                      {"b", R"(path "secret/foo" { capabilities = ["update"] })"}},
         .path = "secret/foo",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("x", "1")}},

        // --- wrapping TTL bounds ----------------------------------------------------------
        {.name = "WrapRequired",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = false},
        {.name = "WrapWithinBounds",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = true,
         .wrap_ttl = 3600},
        {.name = "WrapAtMax",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = true,
         .wrap_ttl = 5400},
        {.name = "WrapAboveMax",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = false,
         .wrap_ttl = 5401},
        {.name = "WrapAtMin",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = true,
         .wrap_ttl = 60},
        {.name = "WrapBelowMin",
         .policies = {{"a", kWrapping}},
         .path = "sys/wrapping/wrap",
         .op = Operation::kUpdate,
         .allowed = false,
         .wrap_ttl = 59},
        {.name = "WrapMergedMaxTakesSmaller",
         .policies = {{"a", R"(path "p" { capabilities = ["read"] max_wrapping_ttl = "1h" })"},
                      {"b", R"(path "p" { capabilities = ["read"] max_wrapping_ttl = "30m" })"}},
         .path = "p",
         .op = Operation::kRead,
         .allowed = false,
         .wrap_ttl = 2700},
        {.name = "WrapMergedBoundsContradict",
         .policies = {{"a", R"(path "p" { capabilities = ["read"] min_wrapping_ttl = "1h" })"},
                      {"b", R"(path "p" { capabilities = ["read"] max_wrapping_ttl = "30m" })"}},
         .path = "p",
         .op = Operation::kRead,
         .allowed = false,
         .wrap_ttl = 1800},
        {.name = "WrapMinOnlyAllowsLong",
         .policies = {{"a", R"(path "p" { capabilities = ["read"] min_wrapping_ttl = 60 })"}},
         .path = "p",
         .op = Operation::kRead,
         .allowed = true,
         .wrap_ttl = 100000},

        // --- the root policy ---------------------------------------------------------------
        {.name = "RootGrantsEverything",
         .policies = {{"root", ""}},
         .path = "anything/at/all",
         .op = Operation::kDelete,
         .allowed = true},
        {.name = "RootIgnoresParameters",
         .policies = {{"root", ""}},
         .path = "x",
         .op = Operation::kUpdate,
         .allowed = true,
         .data = {S("force", "1")}},

        // --- the reference workload ---------------------------------------------------------
        {.name = "LobstackReadsApiKeys",
         .policies = {{"lobstack",
                       R"(path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] })"}},
         .path = "secret/data/lobstack/api-keys",
         .op = Operation::kRead,
         .allowed = true},
        {.name = "LobstackCannotWriteApiKeys",
         .policies = {{"lobstack",
                       R"(path "secret/data/lobstack/api-keys" { capabilities = ["read"] })"}},
         .path = "secret/data/lobstack/api-keys",
         .op = Operation::kUpdate,
         .allowed = false},
        {.name = "LobstackWritesAnyAgent",
         .policies =
             {{"lobstack",
               R"(path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] })"}},
         .path = "secret/data/lobstack/agent/a7",
         .op = Operation::kCreate,
         .allowed = true},
        {.name = "LobstackListsAgents",
         .policies =
             {{"lobstack",
               R"(path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] })"}},
         .path = "secret/data/lobstack/agent/",
         .op = Operation::kList,
         .allowed = true},
    }),
    PrintCase);

// sys/capabilities(-self) answers (vault-api.md 2.13).
TEST(AclCapabilitiesTest, Answers) {
  const Acl acl = MustBuild({{"a", kSecretStarRead},
                             {"b", kSecretFooUpdate},
                             {"c", R"(path "secret/denied" { capabilities = ["deny"] }
               path "secret/empty" {}
               path "sys/mounts/*" { capabilities = ["update", "sudo", "create", "read"] }
               path "kv/metadata" { capabilities = ["list"] })"}});
  EXPECT_THAT(acl.Capabilities("secret/bar"), ElementsAre("read"));
  EXPECT_THAT(acl.Capabilities("secret/foo"), ElementsAre("update"));  // not merged with glob
  EXPECT_THAT(acl.Capabilities("/secret/foo"), ElementsAre("update"));
  EXPECT_THAT(acl.Capabilities("secret/denied"), ElementsAre("deny"));
  EXPECT_THAT(acl.Capabilities("secret/empty"), ElementsAre("deny"));
  EXPECT_THAT(acl.Capabilities("transit/keys/x"), ElementsAre("deny"));
  EXPECT_THAT(acl.Capabilities("sys/mounts/kv"), ElementsAre("create", "read", "sudo", "update"));
  // Looked up as a list, so a trailing '/' falls back to the rule without it.
  EXPECT_THAT(acl.Capabilities("kv/metadata/"), ElementsAre("list"));

  const Acl root = MustBuild({{"root", ""}});
  EXPECT_TRUE(root.is_root());
  EXPECT_THAT(root.Capabilities("anything"), ElementsAre("root"));
}

TEST(AclTest, RootMustBeAlone) {
  absl::StatusOr<Acl> acl = Acl::Create(ParseAll({{"root", ""}, {"default", kSecretStarRead}}));
  ASSERT_FALSE(acl.ok());
  EXPECT_EQ(acl.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AclTest, RootResult) {
  const Acl acl = MustBuild({{"root", ""}});
  const AclResult r =
      acl.Allowed({.path = "sys/raw/x", .operation = Operation::kRead, .root_protected = true});
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.is_root);
  EXPECT_TRUE(r.root_privs);
  EXPECT_TRUE(r.sudo_ok);
  EXPECT_THAT(r.granting_policies, ElementsAre("root"));
}

TEST(AclTest, GrantingPoliciesPerCapability) {
  const Acl acl =
      MustBuild({{"reader", R"(path "secret/foo" { capabilities = ["read"] })"},
                 {"writer", R"(path "secret/foo" { capabilities = ["read", "update"] })"},
                 {"reader2", R"(path "secret/foo" { capabilities = ["read"] }
                                             path "secret/foo" { capabilities = ["read"] })"}});
  AclResult r = acl.Allowed({.path = "secret/foo", .operation = Operation::kRead});
  EXPECT_TRUE(r.allowed);
  EXPECT_THAT(r.granting_policies, ElementsAre("reader", "writer", "reader2"));
  EXPECT_EQ(r.capabilities, kCapRead | kCapUpdate);
  r = acl.Allowed({.path = "secret/foo", .operation = Operation::kUpdate});
  EXPECT_THAT(r.granting_policies, ElementsAre("writer"));
  r = acl.Allowed({.path = "secret/foo", .operation = Operation::kDelete});
  EXPECT_FALSE(r.allowed);
  EXPECT_THAT(r.granting_policies, IsEmpty());
  EXPECT_THAT(r.reason, HasSubstr("does not grant \"delete\""));
}

TEST(AclTest, SudoResultFields) {
  const Acl acl = MustBuild({{"a", R"(path "sys/audit/*" { capabilities = ["update"] })"},
                             {"b", R"(path "sys/auth/*" { capabilities = ["update", "sudo"] })"}});
  AclResult r =
      acl.Allowed({.path = "sys/audit/f", .operation = Operation::kUpdate, .root_protected = true});
  EXPECT_FALSE(r.allowed);
  EXPECT_FALSE(r.root_privs);
  EXPECT_FALSE(r.sudo_ok);
  EXPECT_THAT(r.reason, HasSubstr("sudo"));
  EXPECT_THAT(r.granting_policies, ElementsAre("a"));
  r = acl.Allowed({.path = "sys/auth/k8s", .operation = Operation::kUpdate});
  EXPECT_TRUE(r.allowed);
  EXPECT_TRUE(r.root_privs);  // reported even when the path does not need it
  EXPECT_TRUE(r.sudo_ok);
}

// The default policy (section 7.3), with and without an entity.
TEST(AclTest, DefaultPolicy) {
  absl::StatusOr<Policy> def = ParsePolicy(kDefaultPolicyName, kDefaultPolicyText);
  ASSERT_TRUE(def.ok()) << def.status();
  IdentityContext identity;
  identity.entity_id = "e-1";
  identity.entity_name = "agent-a";
  const std::vector<Policy> policies = {*def};
  absl::StatusOr<Acl> acl = Acl::Create(policies, &identity);
  ASSERT_TRUE(acl.ok());
  auto allowed = [&](std::string_view path, Operation op) {
    return acl->Allowed({.path = path, .operation = op}).allowed;
  };
  EXPECT_TRUE(allowed("auth/token/lookup-self", Operation::kRead));
  EXPECT_TRUE(allowed("auth/token/renew-self", Operation::kUpdate));
  EXPECT_TRUE(allowed("sys/capabilities-self", Operation::kUpdate));
  EXPECT_TRUE(allowed("cubbyhole/anything", Operation::kCreate));
  EXPECT_TRUE(allowed("cubbyhole/", Operation::kList));
  EXPECT_TRUE(allowed("sys/tools/hash/sha2-256", Operation::kUpdate));
  EXPECT_TRUE(allowed("identity/oidc/provider/default/authorize", Operation::kRead));
  EXPECT_TRUE(allowed("identity/entity/id/e-1", Operation::kRead));
  EXPECT_TRUE(allowed("identity/entity/name/agent-a", Operation::kRead));
  EXPECT_FALSE(allowed("identity/entity/id/e-2", Operation::kRead));
  EXPECT_FALSE(allowed("auth/token/lookup-self", Operation::kUpdate));
  EXPECT_FALSE(allowed("secret/data/x", Operation::kRead));
  EXPECT_TRUE(acl->dropped_paths().empty());

  // Without an entity the two identity paths are dropped; the rest still applies.
  absl::StatusOr<Acl> anonymous = Acl::Create(policies);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->dropped_paths().size(), 2u);
  EXPECT_TRUE(anonymous->Allowed({.path = "auth/token/lookup-self"}).allowed);
  EXPECT_FALSE(anonymous->Allowed({.path = "identity/entity/id/"}).allowed);
}

TEST(AclTest, ResponseWrappingPolicy) {
  const Acl acl = MustBuild(
      {{std::string(kResponseWrappingPolicyName), std::string(kResponseWrappingPolicyText)}});
  EXPECT_TRUE(acl.Allowed({.path = "cubbyhole/response", .operation = Operation::kRead}).allowed);
  EXPECT_FALSE(acl.Allowed({.path = "cubbyhole/other", .operation = Operation::kRead}).allowed);
  EXPECT_TRUE(
      acl.Allowed({.path = "sys/wrapping/unwrap", .operation = Operation::kUpdate}).allowed);
}

}  // namespace
}  // namespace strongroom::policy

namespace strongroom::policy {
namespace {

TEST(AclTest, AnyGrantUnderAnswersThePreflight) {
  absl::StatusOr<Acl> acl =
      Acl::Create(ParseAll({{"p",
                             "path \"secret/data/app\" { capabilities = [\"read\"] }\n"
                             "path \"kv/+/x\" { capabilities = [\"list\"] }\n"
                             "path \"deny/*\" { capabilities = [\"deny\"] }\n"
                             "path \"tr*\" { capabilities = [\"update\"] }\n"}}));
  ASSERT_TRUE(acl.ok()) << acl.status();
  EXPECT_TRUE(acl->AnyGrantUnder("secret/"));
  EXPECT_TRUE(acl->AnyGrantUnder("kv/"));
  EXPECT_TRUE(acl->AnyGrantUnder("transit/"));  // "tr*" covers the whole mount
  EXPECT_FALSE(acl->AnyGrantUnder("deny/"));
  EXPECT_FALSE(acl->AnyGrantUnder("other/"));
  EXPECT_FALSE(acl->AnyGrantUnder("secret/data/apps/"));
}

}  // namespace
}  // namespace strongroom::policy
