// Identity templating of ACL paths (policy/template.h), vault-api.md section 6.3, and its use by
// the ACL builder: the per-agent reference policy resolves to the agent's own path only, and a
// path that cannot be rendered is dropped rather than widened.
#include "policy/template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "policy/acl.h"
#include "policy/policy.h"

namespace strongroom::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kAgentPolicy =
    R"(path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
)";

constexpr char kK8sAccessor[] = "auth_kubernetes_1a2b3c4d";

IdentityContext AgentA() {
  IdentityContext id;
  id.entity_id = "7d3c6a52-0000-4000-8000-00000000000a";
  id.entity_name = "entity_a1b2c3d4";
  id.entity_metadata = {{"agent_id", "agent-a"}, {"tier", "gold"}, {"blank", ""}};
  IdentityAlias k8s;
  k8s.id = "alias-k8s-a";
  k8s.name = "5e1c0000-uid";
  k8s.metadata = {{"service_account_name", "agent-a-sa"}, {"service_account_namespace", "tenants"}};
  k8s.custom_metadata = {{"cost_center", "cc-17"}};
  id.aliases.emplace(kK8sAccessor, k8s);
  IdentityAlias approle;
  approle.id = "alias-approle-a";
  approle.name = "role-a";
  approle.metadata = {{"role_name", "agents"}};
  id.aliases.emplace("auth_approle_99aa00bb", approle);
  id.groups = {
      {.id = "g-1", .name = "agents", .metadata = {{"region", "eu"}}},
      {.id = "g-2", .name = "", .metadata = {}},
  };
  return id;
}

Policy MustParse(std::string_view name, std::string_view text) {
  absl::StatusOr<Policy> p = ParsePolicy(name, text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Policy{};
}

bool CanRead(const Acl& acl, std::string_view path) {
  return acl.Allowed({.path = path, .operation = Operation::kRead}).allowed;
}

TEST(RenderPathTest, Selectors) {
  const IdentityContext id = AgentA();
  struct Case {
    std::string_view path;
    std::string_view want;
  } cases[] = {
      {"no/templates/here", "no/templates/here"},
      {"e/{{identity.entity.id}}", "e/7d3c6a52-0000-4000-8000-00000000000a"},
      {"e/{{identity.entity.name}}", "e/entity_a1b2c3d4"},
      {"e/{{identity.entity.metadata.agent_id}}", "e/agent-a"},
      {"e/{{ identity.entity.metadata.agent_id }}", "e/agent-a"},  // whitespace trimmed
      {"e/{{\tidentity.entity.metadata.agent_id\n}}", "e/agent-a"},
      {"a/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.id}}", "a/alias-k8s-a"},
      {"a/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.name}}", "a/5e1c0000-uid"},
      {"a/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.service_account_name}}",
       "a/agent-a-sa"},
      {"a/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.custom_metadata.cost_center}}",
       "a/cc-17"},
      {"a/{{identity.entity.aliases.auth_approle_99aa00bb.metadata.role_name}}", "a/agents"},
      {"g/{{identity.groups.ids.g-1.name}}", "g/agents"},
      {"g/{{identity.groups.ids.g-1.metadata.region}}", "g/eu"},
      {"g/{{identity.groups.names.agents.id}}", "g/g-1"},
      {"g/{{identity.groups.names.agents.metadata.region}}", "g/eu"},
      {"{{identity.entity.metadata.tier}}/{{identity.entity.metadata.agent_id}}/x",
       "gold/agent-a/x"},
      {"t/{{identity.entity.metadata.agent_id}}*", "t/agent-a*"},  // the rule's own glob stays
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> got = RenderPath(c.path, id);
    ASSERT_TRUE(got.ok()) << c.path << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.path;
  }
}

TEST(RenderPathTest, Unresolvable) {
  const IdentityContext id = AgentA();
  struct Case {
    std::string_view path;
    absl::StatusCode code;
    std::string_view message;
  } cases[] = {
      {"e/{{identity.entity.metadata.missing}}", absl::StatusCode::kNotFound,
       "no value for template \"identity.entity.metadata.missing\""},
      {"e/{{identity.entity.metadata.blank}}", absl::StatusCode::kNotFound,
       "no value for template \"identity.entity.metadata.blank\""},
      {"a/{{identity.entity.aliases.auth_userpass_00000000.name}}", absl::StatusCode::kNotFound,
       "no value for template \"identity.entity.aliases.auth_userpass_00000000.name\""},
      {"a/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.nope}}",
       absl::StatusCode::kNotFound,
       "no value for template "
       "\"identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.nope\""},
      {"g/{{identity.groups.ids.g-9.name}}", absl::StatusCode::kNotFound,
       "no value for template \"identity.groups.ids.g-9.name\""},
      {"g/{{identity.groups.ids.g-2.name}}", absl::StatusCode::kNotFound,  // empty name
       "no value for template \"identity.groups.ids.g-2.name\""},
      {"g/{{identity.groups.names.agents.metadata.zone}}", absl::StatusCode::kNotFound,
       "no value for template \"identity.groups.names.agents.metadata.zone\""},
      // Selectors that never resolve in ACL mode.
      {"e/{{identity.entity.metadata}}", absl::StatusCode::kInvalidArgument,
       "invalid template \"identity.entity.metadata\""},
      {"e/{{identity.entity.groups.names}}", absl::StatusCode::kInvalidArgument,
       "invalid template \"identity.entity.groups.names\""},
      {"e/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d}}", absl::StatusCode::kInvalidArgument,
       "invalid template \"identity.entity.aliases.auth_kubernetes_1a2b3c4d\""},
      {"e/{{time.now}}", absl::StatusCode::kInvalidArgument, "invalid template \"time.now\""},
      {"e/{{}}", absl::StatusCode::kInvalidArgument, "invalid template \"\""},
      {"e/{{identity.entity.id", absl::StatusCode::kInvalidArgument,
       "unbalanced templating characters"},
      {"e/identity.entity.id}}", absl::StatusCode::kInvalidArgument,
       "unbalanced templating characters"},
      {"e/{{a{{identity.entity.id}}", absl::StatusCode::kInvalidArgument,
       "unbalanced templating characters"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> got = RenderPath(c.path, id);
    ASSERT_FALSE(got.ok()) << c.path << " rendered as " << *got;
    EXPECT_EQ(got.status().code(), c.code) << c.path;
    EXPECT_EQ(std::string(got.status().message()), c.message) << c.path;
  }
}

TEST(RenderPathTest, NoEntityResolvesNothing) {
  IdentityContext id = AgentA();
  id.entity_id.clear();
  for (std::string_view path : {"{{identity.entity.id}}", "{{identity.entity.name}}",
                                "{{identity.entity.metadata.agent_id}}",
                                "{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.id}}"}) {
    EXPECT_EQ(RenderPath(path, id).status().code(), absl::StatusCode::kNotFound) << path;
  }
  EXPECT_EQ(RenderPath("{{identity.groups.names.x.id}}", IdentityContext{}).status().code(),
            absl::StatusCode::kNotFound);
}

// A substituted value must not turn the rendered path into a glob (or change its depth) unless
// the caller explicitly asks for Vault's verbatim substitution.
TEST(RenderPathTest, ValuesCannotWiden) {
  IdentityContext id = AgentA();
  for (std::string_view value : {"*", "a*", "+", "x/y", "../other"}) {
    id.entity_metadata["agent_id"] = std::string(value);
    absl::StatusOr<std::string> got = RenderPath("s/{{identity.entity.metadata.agent_id}}", id);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << value;
  }
  id.entity_metadata["agent_id"] = "a*";
  EXPECT_EQ(*RenderPath("s/{{identity.entity.metadata.agent_id}}", id, {.allow_wildcards = true}),
            "s/a*");
  id.entity_metadata["agent_id"] = "x/y";
  EXPECT_EQ(*RenderPath("s/{{identity.entity.metadata.agent_id}}", id, {.allow_slashes = true}),
            "s/x/y");
  // The rendered value is not rendered again.
  id.entity_metadata["agent_id"] = "{{identity.entity.id}}";
  EXPECT_EQ(*RenderPath("s/{{identity.entity.metadata.agent_id}}", id), "s/{{identity.entity.id}}");
}

TEST(ValidateTemplatesTest, Grammar) {
  EXPECT_FALSE(*ValidateTemplates("secret/plain/*"));
  EXPECT_TRUE(*ValidateTemplates("secret/{{identity.entity.id}}"));
  EXPECT_TRUE(*ValidateTemplates("{{ identity.groups.names.x.metadata.k.with.dots }}"));
  EXPECT_TRUE(*ValidateTemplates("{{identity.entity.aliases.acc.custom_metadata.k}}"));
  for (std::string_view bad :
       {"{{identity.entity}}", "{{identity.entity.metadata.}}", "{{identity.groups.ids.x}}",
        "{{identity.groups.ids.x.metadata}}", "{{identity.groups.other.x.id}}",
        "{{identity.entity.aliases..id}}", "{{identity.entity.aliases.acc.bogus}}",
        "{{identity.entity.ID}}", "{{ }}", "}}", "{{", "a{{b}}c}}"}) {
    EXPECT_FALSE(ValidateTemplates(bad).ok()) << bad;
  }
}

// The per-agent reference policy: agent A reads its own path and nobody else's.
TEST(TemplatedAclTest, AgentPolicyResolvesToOwnPathOnly) {
  const std::vector<Policy> policies = {MustParse("agent", kAgentPolicy)};
  const IdentityContext a = AgentA();
  absl::StatusOr<Acl> acl = Acl::Create(policies, &a);
  ASSERT_TRUE(acl.ok()) << acl.status();
  EXPECT_TRUE(acl->dropped_paths().empty());
  EXPECT_TRUE(CanRead(*acl, "secret/data/lobstack/agent/agent-a"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/agent-b"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/agent-a/extra"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/api-keys"));
  EXPECT_FALSE(
      acl->Allowed({.path = "secret/data/lobstack/agent/agent-a", .operation = Operation::kUpdate})
          .allowed);
  EXPECT_TRUE(acl->Allowed({.path = "transit/encrypt/agent-data", .operation = Operation::kUpdate})
                  .allowed);
  EXPECT_THAT(acl->Capabilities("secret/data/lobstack/agent/agent-a"), ElementsAre("read"));
  EXPECT_THAT(acl->Capabilities("secret/data/lobstack/agent/agent-b"), ElementsAre("deny"));

  IdentityContext b = AgentA();
  b.entity_id = "other-entity";
  b.entity_metadata["agent_id"] = "agent-b";
  absl::StatusOr<Acl> acl_b = Acl::Create(policies, &b);
  ASSERT_TRUE(acl_b.ok());
  EXPECT_TRUE(CanRead(*acl_b, "secret/data/lobstack/agent/agent-b"));
  EXPECT_FALSE(CanRead(*acl_b, "secret/data/lobstack/agent/agent-a"));
}

TEST(TemplatedAclTest, MissingMetadataDropsOnlyThatBlock) {
  const std::vector<Policy> policies = {MustParse("agent", kAgentPolicy)};
  IdentityContext id = AgentA();
  id.entity_metadata.erase("agent_id");
  absl::StatusOr<Acl> acl = Acl::Create(policies, &id);
  ASSERT_TRUE(acl.ok());
  ASSERT_EQ(acl->dropped_paths().size(), 1u);
  EXPECT_THAT(acl->dropped_paths()[0],
              HasSubstr("no value for template \"identity.entity.metadata.agent_id\""));
  // Nothing under the agent prefix, not even the unrendered text, is reachable.
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/agent-a"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}"));
  // The other blocks of the policy still apply.
  EXPECT_TRUE(acl->Allowed({.path = "transit/decrypt/agent-data", .operation = Operation::kUpdate})
                  .allowed);

  // No identity at all: same outcome.
  absl::StatusOr<Acl> anonymous = Acl::Create(policies);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->dropped_paths().size(), 1u);
  EXPECT_FALSE(CanRead(*anonymous, "secret/data/lobstack/agent/agent-a"));
}

TEST(TemplatedAclTest, WildcardValueIsDroppedNotWidened) {
  const std::vector<Policy> policies = {MustParse("agent", kAgentPolicy)};
  IdentityContext id = AgentA();
  id.entity_metadata["agent_id"] = "*";
  absl::StatusOr<Acl> acl = Acl::Create(policies, &id);
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->dropped_paths().size(), 1u);
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/agent-b"));
  EXPECT_FALSE(CanRead(*acl, "secret/data/lobstack/agent/*"));
}

TEST(TemplatedAclTest, AliasesByMountAccessor) {
  const std::vector<Policy> policies = {MustParse("k8s", R"(
path "secret/data/k8s/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.service_account_namespace}}/{{identity.entity.aliases.auth_kubernetes_1a2b3c4d.metadata.service_account_name}}/*" {
  capabilities = ["read", "list"]
}
path "secret/data/approle/{{identity.entity.aliases.auth_approle_99aa00bb.metadata.role_name}}" {
  capabilities = ["read"]
}
path "secret/data/userpass/{{identity.entity.aliases.auth_userpass_12345678.name}}" {
  capabilities = ["read"]
}
)")};
  const IdentityContext id = AgentA();
  absl::StatusOr<Acl> acl = Acl::Create(policies, &id);
  ASSERT_TRUE(acl.ok());
  EXPECT_TRUE(CanRead(*acl, "secret/data/k8s/tenants/agent-a-sa/config"));
  EXPECT_TRUE(
      acl->Allowed({.path = "secret/data/k8s/tenants/agent-a-sa/", .operation = Operation::kList})
          .allowed);
  EXPECT_FALSE(CanRead(*acl, "secret/data/k8s/tenants/agent-b-sa/config"));
  EXPECT_TRUE(CanRead(*acl, "secret/data/approle/agents"));
  // No alias on the userpass mount: that block is dropped.
  ASSERT_EQ(acl->dropped_paths().size(), 1u);
  EXPECT_THAT(acl->dropped_paths()[0], HasSubstr("auth_userpass_12345678"));
}

TEST(TemplatedAclTest, GroupsAndSharedTemplatesMerge) {
  // Two policies whose templates render to the same path merge like any same-path rules.
  const std::vector<Policy> policies = {
      MustParse("a", R"(path "team/{{identity.groups.names.agents.metadata.region}}/*" {
                          capabilities = ["read"] })"),
      MustParse("b", R"(path "team/eu/*" { capabilities = ["list"] })")};
  const IdentityContext id = AgentA();
  absl::StatusOr<Acl> acl = Acl::Create(policies, &id);
  ASSERT_TRUE(acl.ok());
  EXPECT_THAT(acl->Capabilities("team/eu/x"), ElementsAre("list", "read"));
}

}  // namespace
}  // namespace strongroom::policy
