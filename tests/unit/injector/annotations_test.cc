// The value checks behind the annotations (cli/injector/annotations.h): Go's strconv.ParseBool
// and time.ParseDuration, Kubernetes quantities (apimachinery resource.ParseQuantity's grammar),
// and the defaults the Vault injector uses when an annotation is absent.
#include "cli/injector/annotations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strongroom::injector {
namespace {

using ::testing::HasSubstr;

TEST(Annotations, BoolsAsGoParsesThem) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
    bool v = false;
    EXPECT_EQ(CheckBool(t, &v), "") << t;
    EXPECT_TRUE(v) << t;
  }
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
    bool v = true;
    EXPECT_EQ(CheckBool(f, &v), "") << f;
    EXPECT_FALSE(v) << f;
  }
  for (const char* bad : {"", "yes", "no", "tRUE", " true", "2", "on"}) {
    bool v = false;
    EXPECT_NE(CheckBool(bad, &v), "") << bad;
  }
}

TEST(Annotations, Quantities) {
  struct Case {
    const char* text;
    long double value;
  } kGood[] = {{"250m", 0.25L}, {"1", 1},           {"0.5", 0.5L},
               {".5", 0.5L},    {"64Mi", 67108864}, {"1Gi", 1073741824},
               {"2k", 2000},    {"1e3", 1000},      {"1E-3", 0.001L},
               {"+2", 2},       {"100n", 1e-7L},    {"5.", 5}};
  for (const Case& c : kGood) {
    long double v = -1;
    EXPECT_EQ(CheckQuantity(c.text, &v), "") << c.text;
    EXPECT_NEAR(static_cast<double>(v), static_cast<double>(c.value),
                static_cast<double>(c.value) * 1e-9)
        << c.text;
  }
  for (const char* bad :
       {"", "-1", "m", "1mi", "1MB", "1 Gi", "1.2.3", "lots", "1e", "1e1000", "0x10", "Mi"}) {
    long double v = 0;
    EXPECT_NE(CheckQuantity(bad, &v), "") << bad;
  }
}

TEST(Annotations, GoDurations) {
  for (const char* good :
       {"0", "5m", "1h30m", "300ms", "1.5h", "2h45m30.5s", "10us", "10\xc2\xb5s", "+30s", "1ns"}) {
    EXPECT_EQ(CheckGoDuration(good), "") << good;
  }
  for (const char* bad : {"", "5", "5 m", "m", "1d", "1h-5m", ".s", "5minutes"}) {
    EXPECT_NE(CheckGoDuration(bad), "") << bad;
  }
  EXPECT_THAT(CheckGoDuration("-5m"), HasSubstr("negative"));
  EXPECT_EQ(CheckGoDuration("2562047h"), "");  // within Go's int64 nanoseconds
  EXPECT_THAT(CheckGoDuration("2562048h"), HasSubstr("292 years"));
}

TEST(Annotations, Ids) {
  int64_t id = 0;
  EXPECT_EQ(CheckUid("100", false, &id), "");
  EXPECT_EQ(id, 100);
  EXPECT_EQ(CheckUid("2147483647", false, &id), "");
  EXPECT_NE(CheckUid("2147483648", false, &id), "");
  EXPECT_NE(CheckUid("0", false, &id), "");
  EXPECT_EQ(CheckUid("0", true, &id), "");
  EXPECT_NE(CheckUid("+1", true, &id), "");
  EXPECT_NE(CheckUid("", true, &id), "");
}

TEST(Annotations, DefaultsAreTheVaultInjectors) {
  InjectorDefaults d;
  d.vault_address = "https://strongroom:8200";
  d.agent_image = "strongroom:1";
  absl::StatusOr<AnnotationDecision> r = ReadAnnotations(
      {{"vault.hashicorp.com/agent-inject", "true"}, {"vault.hashicorp.com/role", "app"}}, d);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->inject);
  const InjectionSpec& s = r->spec;
  EXPECT_TRUE(s.pre_populate);
  EXPECT_FALSE(s.pre_populate_only);
  EXPECT_FALSE(s.init_first);
  EXPECT_EQ(s.auth_path, "auth/kubernetes");
  EXPECT_EQ(s.secret_volume_path, "/vault/secrets");
  EXPECT_EQ(s.run_as_user, 100);
  EXPECT_EQ(s.run_as_group, 1000);
  EXPECT_EQ(s.resources.cpu_request, "250m");
  EXPECT_EQ(s.resources.cpu_limit, "500m");
  EXPECT_EQ(s.resources.mem_request, "64Mi");
  EXPECT_EQ(s.resources.mem_limit, "128Mi");
  EXPECT_TRUE(s.exit_on_retry_failure);
  EXPECT_FALSE(s.tls_skip_verify);
  EXPECT_TRUE(s.secrets.empty());
  EXPECT_TRUE(s.warnings.empty());
}

TEST(Annotations, SecretNamesAreLowerCasedUnlessPreserved) {
  InjectorDefaults d;
  d.vault_address = "https://strongroom:8200";
  d.agent_image = "strongroom:1";
  absl::StatusOr<AnnotationDecision> r =
      ReadAnnotations({{"vault.hashicorp.com/agent-inject", "true"},
                       {"vault.hashicorp.com/role", "app"},
                       {"vault.hashicorp.com/agent-inject-secret-DB", "database/creds/app"},
                       {"vault.hashicorp.com/agent-inject-secret-Cfg", "secret/data/cfg"},
                       {"vault.hashicorp.com/preserve-secret-case-Cfg", "true"},
                       {"vault.hashicorp.com/agent-inject-secret-blank", "  "}},
                      d);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->spec.secrets.size(), 2u);
  EXPECT_EQ(r->spec.secrets[0].destination, "/vault/secrets/Cfg");
  EXPECT_EQ(r->spec.secrets[1].destination, "/vault/secrets/db");
  EXPECT_TRUE(r->spec.warnings.empty());
  // Two names that lower-case alike would render to one file.
  r = ReadAnnotations({{"vault.hashicorp.com/agent-inject", "true"},
                       {"vault.hashicorp.com/role", "app"},
                       {"vault.hashicorp.com/agent-inject-secret-DB", "database/creds/app"},
                       {"vault.hashicorp.com/agent-inject-secret-db", "database/creds/app"}},
                      d);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("same file"));
}

}  // namespace
}  // namespace strongroom::injector
