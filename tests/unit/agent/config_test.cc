// Vault Agent's configuration as strongroom agent reads it (Vault docs: "Vault Agent
// configuration", "Auto-Auth", "Templates"): HCL and the JSON the injector writes read alike;
// unknown and unsupported keys are errors naming them.
#include "cli/agent/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strongroom::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kHcl[] = R"(
vault {
  address = "https://strongroom.strongroom.svc:8200"
  ca_cert = "/vault/tls/ca.crt"
}
auto_auth {
  method "kubernetes" {
    mount_path = "auth/k8s"
    config = {
      role = "lobstack-api"
    }
  }
  sink "file" {
    config = {
      path = "/home/vault/.vault-token"
      mode = "0600"
    }
  }
}
exit_after_auth = true
pid_file = "/home/vault/.pid"
template_config {
  static_secret_render_interval = "2m"
  exit_on_retry_failure = true
}
template {
  destination = "/vault/secrets/api-keys"
  contents = "{{ with secret \"secret/data/x\" }}{{ .Data.data.k }}{{ end }}"
  perms = "0640"
  command = "kill -HUP 1"
  error_on_missing_key = true
}
template {
  source = "/etc/t.ctmpl"
  destination = "/vault/secrets/other"
  left_delimiter = "[["
  right_delimiter = "]]"
}
)";

constexpr char kJson[] = R"({
  "auto_auth": {
    "method": {"type": "kubernetes", "mount_path": "auth/k8s",
               "config": {"role": "lobstack-api"}},
    "sink": [{"type": "file", "config": {"path": "/home/vault/.vault-token", "mode": "0600"}}]
  },
  "exit_after_auth": true,
  "pid_file": "/home/vault/.pid",
  "vault": {"address": "https://strongroom.strongroom.svc:8200", "ca_cert": "/vault/tls/ca.crt"},
  "template": [
    {"destination": "/vault/secrets/api-keys",
     "contents": "{{ with secret \"secret/data/x\" }}{{ .Data.data.k }}{{ end }}",
     "perms": "0640", "command": "kill -HUP 1", "error_on_missing_key": true},
    {"source": "/etc/t.ctmpl", "destination": "/vault/secrets/other",
     "left_delimiter": "[[", "right_delimiter": "]]"}
  ],
  "template_config": {"static_secret_render_interval": "2m", "exit_on_retry_failure": true}
})";

void ExpectSeedShape(const AgentConfig& c) {
  EXPECT_EQ(c.vault.address, "https://strongroom.strongroom.svc:8200");
  EXPECT_EQ(c.vault.ca_cert, "/vault/tls/ca.crt");
  ASSERT_TRUE(c.method.has_value());
  EXPECT_EQ(c.method->type, "kubernetes");
  EXPECT_EQ(c.method->mount_path, "auth/k8s");
  EXPECT_EQ(c.method->config.at("role"), "lobstack-api");
  // The default token path of a pod's service account.
  EXPECT_EQ(c.method->config.at("token_path"),
            "/var/run/secrets/kubernetes.io/serviceaccount/token");
  ASSERT_EQ(c.sinks.size(), 1u);
  EXPECT_EQ(c.sinks[0].path, "/home/vault/.vault-token");
  EXPECT_EQ(c.sinks[0].mode, 0600u);
  EXPECT_TRUE(c.exit_after_auth);
  EXPECT_EQ(c.pid_file, "/home/vault/.pid");
  EXPECT_EQ(c.template_config.static_secret_render_interval, absl::Minutes(2));
  EXPECT_TRUE(c.template_config.exit_on_retry_failure);
  ASSERT_EQ(c.templates.size(), 2u);
  EXPECT_EQ(c.templates[0].destination, "/vault/secrets/api-keys");
  EXPECT_TRUE(c.templates[0].has_contents);
  EXPECT_EQ(c.templates[0].contents,
            "{{ with secret \"secret/data/x\" }}{{ .Data.data.k }}{{ end }}");
  EXPECT_EQ(c.templates[0].perms, 0640u);
  EXPECT_EQ(c.templates[0].command, "kill -HUP 1");
  EXPECT_TRUE(c.templates[0].error_on_missing_key);
  EXPECT_FALSE(c.templates[1].has_contents);
  EXPECT_EQ(c.templates[1].source, "/etc/t.ctmpl");
  EXPECT_FALSE(c.templates[1].perms.has_value());
  EXPECT_EQ(c.templates[1].left_delimiter, "[[");
  EXPECT_EQ(c.templates[1].right_delimiter, "]]");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(AgentConfigTest, ReadsVaultAgentHcl) {
  auto c = ParseConfig(kHcl, "agent.hcl");
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectSeedShape(*c);
}

TEST(AgentConfigTest, ReadsTheJsonTheInjectorWrites) {
  auto c = ParseConfig(kJson, "$VAULT_CONFIG");
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectSeedShape(*c);
}

TEST(AgentConfigTest, MethodTypeAttributeAndDefaults) {
  auto c = ParseConfig(R"(auto_auth {
    method {
      type = "approle"
      config = { role_id_file_path = "/r", secret_id_file_path = "/s" }
    }
  })",
                       "a");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->method->type, "approle");
  EXPECT_EQ(c->method->mount_path, "auth/approle");
  EXPECT_EQ(c->template_config.static_secret_render_interval, absl::Minutes(5));
  EXPECT_FALSE(c->template_config.exit_on_retry_failure);
  EXPECT_FALSE(c->exit_after_auth);
}

TEST(AgentConfigTest, SinkModeDefaultsTo0640AndAcceptsANumber) {
  auto c = ParseConfig(R"(auto_auth {
    method "token_file" { config = { token_file_path = "/t" } }
    sink "file" { config = { path = "/a" } }
    sink "file" { config = { path = "/b", mode = 384 } }
  })",
                       "a");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->sinks.size(), 2u);
  EXPECT_EQ(c->sinks[0].mode, 0640u);
  EXPECT_EQ(c->sinks[1].mode, 0600u);
}

struct BadCase {
  const char* name;
  const char* text;
  const char* message;
};

class AgentConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(AgentConfigErrorTest, NamesTheProblem) {
  auto c = ParseConfig(GetParam().text, "agent.hcl");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr(GetParam().message));
  EXPECT_THAT(c.status().message(), HasSubstr("agent.hcl: "));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AgentConfigErrorTest,
    ::testing::Values(
        BadCase{"UnknownTopLevel", "vaultt { }", "line 1, column 1: vaultt: unknown key"},
        BadCase{"Listener", "listener \"tcp\" { }",
                "listener: Vault Agent's \"listener\" is not supported by strongroom agent"},
        BadCase{"Cache", "cache { }", "\"cache\" is not supported"},
        BadCase{"UnknownVaultKey", "vault { adress = \"x\" }", "vault.adress: unknown key"},
        BadCase{"UnknownTemplateKey", "template { destinaton = \"x\" }",
                "template.destinaton: unknown key"},
        BadCase{"BadMethod", "auto_auth { method \"aws\" { } }", "type \"aws\" is not supported"},
        BadCase{"NoMethodType", "auto_auth { method { } }", "no type"},
        BadCase{"TwoMethods",
                "auto_auth { method \"approle\" { config = { role_id_file_path = \"/r\" } }\n"
                "method \"approle\" { config = { role_id_file_path = \"/r\" } } }",
                "needs exactly one method"},
        BadCase{"UnknownMethodConfig",
                "auto_auth { method \"kubernetes\" { config = { role = \"r\", jwt = \"x\" } } }",
                "unknown key \"jwt\" for kubernetes"},
        BadCase{"KubernetesNeedsRole", "auto_auth { method \"kubernetes\" { } }",
                "kubernetes needs \"role\""},
        BadCase{"SinkType",
                "auto_auth { method \"token_file\" { config = { token_file_path = \"/t\" } }\n"
                "sink \"cloud\" { } }",
                "type \"cloud\" is not supported"},
        BadCase{"SinkNoPath",
                "auto_auth { method \"token_file\" { config = { token_file_path = \"/t\" } }\n"
                "sink \"file\" { config = { } } }",
                "needs \"path\""},
        BadCase{"BadMode", "template { perms = \"0999\" }", "expected an octal file mode"},
        BadCase{"ModeTooLarge", "template { perms = \"77777\" }", "expected an octal file mode"},
        BadCase{"BadBool", "exit_after_auth = \"yes\"", "exit_after_auth: expected a boolean"},
        BadCase{"BadDuration", "template_config { static_secret_render_interval = \"soon\" }",
                "expected a duration"},
        BadCase{"TooShortInterval", "template_config { static_secret_render_interval = 0 }",
                "at least 1s"},
        BadCase{"DuplicateScalar", "pid_file = \"/a\"\npid_file = \"/b\"", "given more than once"},
        BadCase{
            "Namespace",
            "auto_auth { method \"kubernetes\" { namespace = \"ns1\" config = { role = \"r\" } } }",
            "namespaces are not supported"},
        BadCase{"HclSyntax", "vault {", "agent.hcl: line 1"}),
    [](const ::testing::TestParamInfo<BadCase>& param) { return std::string(param.param.name); });

TEST(AgentConfigTest, IgnoredStanzasAreWarnings) {
  auto c = ParseConfig("telemetry { }\nlog_level = \"debug\"\n", "a");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->warnings, ::testing::UnorderedElementsAre(
                               HasSubstr("telemetry is accepted and ignored"),
                               HasSubstr("line 2, column 1: log_level is accepted")));
}

TEST(AgentConfigTest, ValidateRefusesIncompleteTemplates) {
  const std::string method =
      "auto_auth { method \"token_file\" { config = { token_file_path = \"/t\" } } }\n";
  auto check = [&](const std::string& text, const char* message) {
    auto c = ParseConfig(method + text, "a");
    ASSERT_TRUE(c.ok()) << c.status();
    absl::Status s = ValidateConfig(*c);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_THAT(s.message(), HasSubstr(message)) << text;
  };
  check("template { contents = \"x\" }", "template 1: no destination");
  check("template { destination = \"/a\" }", "exactly one of source and contents");
  check("template { destination = \"/a\" source = \"/s\" contents = \"x\" }",
        "exactly one of source and contents");
  check(
      "template { destination = \"/a\" contents = \"x\" }\n"
      "template { destination = \"/a\" contents = \"y\" }",
      "is used twice");
  check("template { destination = \"/a\" contents = \"x\" left_delimiter = \"\" }",
        "empty delimiter");
  auto none = ParseConfig("template { destination = \"/a\" contents = \"x\" }", "a");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(ValidateConfig(*none).message(), HasSubstr("need an auto_auth method"));
}

TEST(AgentConfigTest, ReadsWrapTtlOnTheMethodAndOnSinks) {
  auto c = ParseConfig(R"(auto_auth {
    method "approle" {
      wrap_ttl = "5m"
      config = { role_id_file_path = "/r" }
    }
    sink "file" { config = { path = "/a" } }
  })",
                       "a");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->method->wrap_ttl, absl::Minutes(5));
  EXPECT_EQ(c->sinks[0].wrap_ttl, absl::ZeroDuration());
  EXPECT_TRUE(ValidateConfig(*c).ok());
  auto j = ParseConfig(R"({"auto_auth": {
    "method": {"type": "approle", "config": {"role_id_file_path": "/r"}},
    "sink": [{"type": "file", "wrap_ttl": 300, "config": {"path": "/a"}},
             {"type": "file", "wrap_ttl": "1h", "config": {"path": "/b"}},
             {"type": "file", "config": {"path": "/c"}}]}})",
                       "a.json");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->method->wrap_ttl, absl::ZeroDuration());
  EXPECT_EQ(j->sinks[0].wrap_ttl, absl::Minutes(5));
  EXPECT_EQ(j->sinks[1].wrap_ttl, absl::Hours(1));
  EXPECT_EQ(j->sinks[2].wrap_ttl, absl::ZeroDuration());
  EXPECT_TRUE(ValidateConfig(*j).ok());
  EXPECT_THAT(ParseConfig(R"(auto_auth {
    method "approle" { config = { role_id_file_path = "/r" } }
    sink "file" { wrap_ttl = "soon" config = { path = "/a" } }
  })",
                          "a")
                  .status()
                  .message(),
              HasSubstr("auto_auth.sink.wrap_ttl: expected a duration"));
}

// Vault's rules for a wrapping method (its config parser's errors), and ours where the agent
// could not work at all.
TEST(AgentConfigTest, AWrappingMethodNeedsOneUnwrappedSinkAndNoTemplate) {
  const std::string method =
      "auto_auth { method \"approle\" { wrap_ttl = \"2m\" config = { role_id_file_path = "
      "\"/r\" } }\n";
  auto check = [&](const std::string& text, const char* message) {
    auto c = ParseConfig(text, "a");
    ASSERT_TRUE(c.ok()) << c.status();
    absl::Status s = ValidateConfig(*c);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_THAT(s.message(), HasSubstr(message)) << text;
  };
  check(method + "}\ntemplate { destination = \"/a\" contents = \"x\" }",
        "error parsing auto_auth: wrapping enabled on auth method and 0 or many sinks defined");
  check(method + "sink \"file\" { config = { path = \"/a\" } }\n" +
            "sink \"file\" { config = { path = \"/b\" } } }",
        "error parsing auto_auth: wrapping enabled on auth method and 0 or many sinks defined");
  check(method + "sink \"file\" { wrap_ttl = \"1m\" config = { path = \"/a\" } } }",
        "error parsing auto_auth: wrapping enabled both on auth method and sink");
  check(method +
            "sink \"file\" { config = { path = \"/a\" } } }\n"
            "template { destination = \"/x\" contents = \"x\" }",
        "the agent cannot use the wrapped token, so it cannot render templates");
  check(
      "auto_auth { method \"token_file\" { wrap_ttl = 60 config = { token_file_path = \"/t\" } "
      "}\nsink \"file\" { config = { path = \"/a\" } } }",
      "the token_file method has no login to wrap");
}

TEST(AgentConfigTest, MergeAddsTemplatesAndRefusesTwoMethods) {
  auto a = ParseConfig(
      "auto_auth { method \"token_file\" { config = { token_file_path = \"/t\" } } }\n"
      "template { destination = \"/a\" contents = \"x\" }",
      "a");
  auto b = ParseConfig(
      "vault { address = \"http://b\" }\ntemplate { destination = \"/b\" contents = \"y\" }", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  AgentConfig merged = *a;
  ASSERT_TRUE(MergeConfig(merged, *b).ok());
  EXPECT_EQ(merged.templates.size(), 2u);
  EXPECT_EQ(merged.vault.address, "http://b");
  EXPECT_FALSE(MergeConfig(merged, *a).ok());
}

}  // namespace
}  // namespace strongroom::agent
