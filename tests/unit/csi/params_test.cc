// The SecretProviderClass parameters as the Vault CSI provider reads them
// (hashicorp/vault-csi-provider, internal/config): the attributes JSON, the `objects` YAML, the
// driver's pod information and service-account tokens, and the bounds on all of them.
#include "cli/csi/params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace strongroom::csi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using njson = nlohmann::json;

constexpr char kObjects[] = R"(
- objectName: openai-api-key
  secretPath: secret/data/lobstack/api-keys
  secretKey: openai
  filePermission: 0440
- objectName: api-keys.json
  secretPath: /v1/secret/data/lobstack/api-keys?version=2
- objectName: ciphertext
  secretPath: transit/encrypt/lobstack
  method: PUT
  secretArgs:
    plaintext: aGVsbG8=
    context: null
    batch: [1, 2.5, true, "x", ~]
    nested: {a: {b: 0x10}}
  encoding: base64
)";

njson Attributes() {
  return {{"roleName", "lobstack-api-csi"},
          {"vaultAddress", "https://strongroom.strongroom.svc:8200"},
          {"vaultCACertPath", "/etc/ca.crt"},
          {"objects", kObjects},
          {"csi.storage.k8s.io/pod.name", "lobstack-api-7d9f-x2"},
          {"csi.storage.k8s.io/pod.namespace", "lobstack-control-plane"},
          {"csi.storage.k8s.io/pod.uid", "6a7b2c1e-0000-4000-8000-000000000001"},
          {"csi.storage.k8s.io/serviceAccount.name", "lobstack-api"},
          {"csi.storage.k8s.io/ephemeral", "true"},
          {"secretProviderClass", "lobstack-api"}};
}

absl::StatusOr<MountParams> Parse(const njson& attributes, std::string_view permission = "420") {
  return ParseMountRequest(attributes.dump(), "/var/lib/kubelet/pods/x/volumes/v", permission);
}

std::string ErrorOf(const njson& attributes, std::string_view permission = "420") {
  auto p = Parse(attributes, permission);
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status())) << p.status();
  return std::string(p.status().message());
}

TEST(CsiParamsTest, ReadsTheVaultProvidersParameters) {
  auto p = Parse(Attributes());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->role_name, "lobstack-api-csi");
  EXPECT_EQ(p->vault_address, "https://strongroom.strongroom.svc:8200");
  EXPECT_EQ(p->tls.ca_cert, "/etc/ca.crt");
  EXPECT_FALSE(p->tls.skip_verify.has_value());
  EXPECT_EQ(p->auth_mount_path, "");  // the provider's default
  EXPECT_EQ(p->permission, 0644u);
  EXPECT_EQ(p->pod.name, "lobstack-api-7d9f-x2");
  EXPECT_EQ(p->pod.namespace_, "lobstack-control-plane");
  EXPECT_EQ(p->pod.service_account_name, "lobstack-api");
  EXPECT_EQ(p->pod.uid, "6a7b2c1e-0000-4000-8000-000000000001");
  EXPECT_EQ(p->pod.service_account_token, "");
  ASSERT_EQ(p->objects.size(), 3u);

  const ObjectSpec& key = p->objects[0];
  EXPECT_EQ(key.object_name, "openai-api-key");
  EXPECT_EQ(key.secret_path, "secret/data/lobstack/api-keys");
  EXPECT_EQ(key.secret_key, "openai");
  EXPECT_EQ(key.method, "GET");
  EXPECT_EQ(key.file_permission, 0440u);  // YAML 1.1 octal, as yaml.v3 reads it
  EXPECT_FALSE(key.secret_args.has_value());

  EXPECT_EQ(p->objects[1].secret_path, "/v1/secret/data/lobstack/api-keys?version=2");
  EXPECT_EQ(p->objects[1].file_permission, 0u);

  const ObjectSpec& put = p->objects[2];
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.encoding, "base64");
  ASSERT_TRUE(put.secret_args.has_value());
  // yaml.v3's resolution of plain scalars into interface{}: null, bool, int, float, string.
  EXPECT_EQ(njson::parse(core::Serialize(*put.secret_args)),
            njson::parse(R"({"plaintext":"aGVsbG8=","context":null,
                             "batch":[1,2.5,true,"x",null],"nested":{"a":{"b":16}}})"));
  // The canonical configuration: keys sorted, stable, holding everything that makes the object.
  EXPECT_EQ(key.canonical,
            R"({"encoding":"","filePermission":288,"method":"GET","objectName":"openai-api-key",)"
            R"("secretKey":"openai","secretPath":"secret/data/lobstack/api-keys"})");
  EXPECT_THAT(put.canonical, HasSubstr(R"("secretArgs":{"batch":[1,2.5,true,"x",null],)"));
}

TEST(CsiParamsTest, FilePermissionForms) {
  for (const auto& [text, mode] : std::vector<std::pair<std::string, uint32_t>>{{"0600", 0600},
                                                                                {"0o600", 0600},
                                                                                {"384", 0600},
                                                                                {"0x1a4", 0644},
                                                                                {"0", 0},
                                                                                {"~", 0},
                                                                                {"0777", 0777}}) {
    auto objects = ParseObjects("- objectName: a\n  secretPath: p\n  filePermission: " + text);
    ASSERT_TRUE(objects.ok()) << text << ": " << objects.status();
    EXPECT_EQ((*objects)[0].file_permission, mode) << text;
  }
  for (const std::string text : {"'0600'", "\"384\"", "01000", "512", "-1", "rw", "[1]", "6.5"}) {
    auto objects = ParseObjects("- objectName: a\n  secretPath: p\n  filePermission: " + text);
    ASSERT_FALSE(objects.ok()) << text;
    EXPECT_THAT(objects.status().message(), HasSubstr("object \"a\": filePermission must be"))
        << text;
  }
}

TEST(CsiParamsTest, StringFieldsTakeAnyScalarAsText) {
  // yaml.v3 decodes a plain int into a string field as its text.
  auto objects = ParseObjects("- objectName: 2024\n  secretPath: secret/data/x\n  secretKey: 7");
  ASSERT_TRUE(objects.ok()) << objects.status();
  EXPECT_EQ((*objects)[0].object_name, "2024");
  EXPECT_EQ((*objects)[0].secret_key, "7");
  // Unknown keys are ignored, as by Vault's provider.
  objects = ParseObjects("- objectName: a\n  secretPath: p\n  objectVersion: 3\n  frobnicate: x");
  EXPECT_TRUE(objects.ok()) << objects.status();
}

TEST(CsiParamsTest, ObjectErrorsNameTheObjectAndTheCause) {
  struct Case {
    std::string yaml, error;
  };
  for (const Case& c : std::vector<Case>{
           {"- objectName: a\n  secretKey: k", "object \"a\": secretPath is required"},
           {"- secretPath: p", "object 1: objectName is required"},
           {"- objectName: a\n  secretPath: p\n  method: DELETE",
            "object \"a\": method must be GET, PUT or POST"},
           {"- objectName: a\n  secretPath: p\n  method: get",
            "object \"a\": method must be GET, PUT or POST"},
           {"- objectName: a\n  secretPath: p\n  encoding: rot13",
            "object \"a\": invalid encoding type. Should be utf-8, base64, or hex"},
           {"- objectName: a\n  secretPath: [p]", "object \"a\": secretPath must be a string"},
           {"- objectName: a\n  secretPath: p\n  secretArgs: [1]",
            "object \"a\": secretArgs must be a mapping"},
           {"- objectName: a\n  secretPath: p\n  secretArgs: {x: .inf}",
            "object \"a\": secretArgs cannot be sent as JSON"},
           {"- objectName: ../etc/passwd\n  secretPath: p",
            "object 1: objectName must not start with \"..\""},
           {"- objectName: /etc/passwd\n  secretPath: p",
            "object 1: objectName must be a relative path"},
           {"- objectName: a/../../b\n  secretPath: p", "object 1: objectName must not hold"},
           {"- objectName: a//b\n  secretPath: p", "object 1: objectName must not hold"},
           {"- objectName: \"a\\nb\"\n  secretPath: p", "objectName holds a control character"},
           {"- objectName: a\n  objectName: b\n  secretPath: p",
            "entry 1 has the key \"objectName\" twice"},
           {"- just a string", "entry 1 is not a mapping"},
           {"objectName: a\nsecretPath: p", "must be a YAML list of objects"},
           {"- objectName: a\n  secretPath: p\n- [x]", "entry 2 is not a mapping"},
       }) {
    auto objects = ParseObjects(c.yaml);
    ASSERT_FALSE(objects.ok()) << c.yaml;
    EXPECT_TRUE(absl::IsInvalidArgument(objects.status()));
    EXPECT_THAT(objects.status().message(), HasSubstr(c.error)) << c.yaml;
    EXPECT_THAT(objects.status().message(), HasSubstr("parameter \"objects\"")) << c.yaml;
  }
}

TEST(CsiParamsTest, MalformedYamlIsAClearErrorWithoutTheText) {
  njson a = Attributes();
  a["objects"] = "- objectName: a\n  secretPath: [unclosed\n  secretArgs: {plaintext: c2VjcmV0}";
  const std::string error = ErrorOf(a);
  EXPECT_THAT(error, HasSubstr("parameter \"objects\" is not valid YAML: line "));
  EXPECT_THAT(error, Not(HasSubstr("c2VjcmV0")));
  a["objects"] = "- objectName: a\n\tsecretPath: p";  // a tab where indentation goes
  EXPECT_THAT(ErrorOf(a), HasSubstr("is not valid YAML"));
  // yaml-cpp names the character of a bad escape; the error gives the place only.
  a["objects"] = "- objectName: a\n  secretPath: p\n  secretArgs: {plaintext: \"s3\\qcret\"}";
  const std::string escape = ErrorOf(a);
  EXPECT_THAT(escape, HasSubstr("is not valid YAML: line 3, column"));
  EXPECT_THAT(escape, Not(HasSubstr("q")));
  // A duplicate key is named by its first 64 bytes only.
  const std::string long_key(200, 'k');
  a["objects"] =
      "- objectName: a\n  secretPath: p\n  secretArgs: {" + long_key + ": 1, " + long_key + ": 2}";
  const std::string dup = ErrorOf(a);
  EXPECT_THAT(dup, HasSubstr(std::string(64, 'k') + "...\" twice"));
  EXPECT_THAT(dup, Not(HasSubstr(std::string(65, 'k'))));
}

TEST(CsiParamsTest, WhatVaultsProviderRefuses) {
  njson a = Attributes();
  a.erase("roleName");
  EXPECT_EQ(ErrorOf(a), "missing 'roleName' in SecretProviderClass definition");
  a = Attributes();
  a["objects"] = "";
  EXPECT_EQ(ErrorOf(a), "no secrets configured - the provider will not read any secret material");
  a["objects"] = "[]";
  EXPECT_THAT(ErrorOf(a), HasSubstr("no secrets configured"));
  a = Attributes();
  a["objects"] =
      "- {objectName: a, secretPath: p}\n- {objectName: b, secretPath: p}\n"
      "- {objectName: a, secretPath: q}";
  EXPECT_EQ(ErrorOf(a),
            "each `objectName` within a SecretProviderClass must be unique, but the following "
            "keys were duplicated: a");
  a = Attributes();
  a["vaultKubernetesMountPath"] = "k8s";
  a["vaultAuthMountPath"] = "k8s";
  EXPECT_EQ(ErrorOf(a), "cannot set both vaultKubernetesMountPath and vaultAuthMountPath");
  a = Attributes();
  a["vaultSkipTLSVerify"] = "yes";
  EXPECT_THAT(ErrorOf(a), HasSubstr("vaultSkipTLSVerify"));
  EXPECT_EQ(ErrorOf(Attributes(), "0644"),
            "the mount request's permission must be a decimal file mode from 0 to 511");
  EXPECT_THAT(ErrorOf(Attributes(), ""), HasSubstr("permission"));
  EXPECT_THAT(ErrorOf(Attributes(), "512"), HasSubstr("permission"));
  auto no_target = ParseMountRequest(Attributes().dump(), "", "420");
  EXPECT_EQ(no_target.status().message(), "missing target path field");
}

TEST(CsiParamsTest, MountPathSkipVerifyAndTls) {
  njson a = Attributes();
  a["vaultKubernetesMountPath"] = "kubernetes-east";
  a["vaultSkipTLSVerify"] = "true";
  a["vaultTLSClientCertPath"] = "/c";
  a["vaultTLSClientKeyPath"] = "/k";
  a["vaultNamespace"] = "ns1";
  auto p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->auth_mount_path, "kubernetes-east");
  EXPECT_EQ(p->tls.skip_verify, true);
  EXPECT_EQ(p->vault_namespace, "ns1");
  a.erase("vaultKubernetesMountPath");
  a["vaultAuthMountPath"] = "jwt-k8s";
  a["vaultSkipTLSVerify"] = "F";  // Go's ParseBool
  p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->auth_mount_path, "jwt-k8s");
  EXPECT_EQ(p->tls.skip_verify, false);
  a.erase("vaultTLSClientKeyPath");
  EXPECT_THAT(ErrorOf(a), HasSubstr("must be set together"));
}

TEST(CsiParamsTest, AttributesMustBeAnObjectOfStrings) {
  EXPECT_THAT(std::string(ParseMountRequest("[1]", "/t", "420").status().message()),
              HasSubstr("not a JSON object of strings"));
  EXPECT_THAT(std::string(ParseMountRequest("{", "/t", "420").status().message()),
              HasSubstr("not a JSON object of strings"));
  njson a = Attributes();
  a["roleName"] = 5;
  EXPECT_EQ(ErrorOf(a), "parameter \"roleName\" must be a string");
  a = Attributes();
  a["csi.storage.k8s.io/pod.namespace"] = "Bad_Namespace";
  EXPECT_THAT(ErrorOf(a), HasSubstr("is not a Kubernetes name"));
  a = Attributes();
  a["csi.storage.k8s.io/pod.uid"] = "not a uid";
  EXPECT_THAT(ErrorOf(a), HasSubstr("is not a UID"));
  const std::string big(kMaxAttributesBytes + 1, ' ');
  EXPECT_THAT(std::string(ParseMountRequest(big, "/t", "420").status().message()),
              HasSubstr("larger than"));
}

TEST(CsiParamsTest, TheDriversTokenForTheAudience) {
  njson a = Attributes();
  njson tokens = {
      {"vault", {{"token", "jwt-for-vault"}, {"expirationTimestamp", "2030-01-01T00:00:00Z"}}},
      {"other", {{"token", "jwt-for-other"}, {"expirationTimestamp", ""}}}};
  a["csi.storage.k8s.io/serviceAccount.tokens"] = tokens.dump();
  auto p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pod.service_account_token, "jwt-for-vault");  // the default audience "vault"
  a["audience"] = "other";
  p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pod.service_account_token, "jwt-for-other");
  a["audience"] = "absent";
  p = Parse(a);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pod.service_account_token, "");  // the provider then requests one (if it may)

  a["csi.storage.k8s.io/serviceAccount.tokens"] = "{not json";
  std::string error = ErrorOf(a);
  EXPECT_THAT(error, HasSubstr("failed to unmarshal service account tokens"));
  a["csi.storage.k8s.io/serviceAccount.tokens"] = R"({"vault":{"token":7}})";
  EXPECT_THAT(ErrorOf(a), HasSubstr("token is not a string"));
  // A bad tokens value never shows up in the error.
  a["csi.storage.k8s.io/serviceAccount.tokens"] = R"({"vault":"eyJsecret"})";
  error = ErrorOf(a);
  EXPECT_THAT(error, Not(HasSubstr("eyJsecret")));
}

TEST(CsiParamsTest, BoundsOnObjects) {
  std::string many;
  for (size_t i = 0; i <= kMaxObjects; ++i) {
    many += "- {objectName: o" + std::to_string(i) + ", secretPath: p}\n";
  }
  auto r = ParseObjects(many);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("lists more than 256 objects"));

  EXPECT_THAT(
      std::string(ParseObjects(std::string(kMaxObjectsYamlBytes + 1, '#')).status().message()),
      HasSubstr("larger than"));

  // Aliases are expanded as they are used: a billion-laughs document runs into the node budget.
  std::string laughs =
      "- objectName: a\n  secretPath: p\n  secretArgs:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, "
      "x]\n";
  for (int i = 1; i < 9; ++i) {
    laughs += "    l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) laughs += (j ? ", *l" : "*l") + std::to_string(i - 1);
    laughs += "]\n";
  }
  r = ParseObjects(laughs);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("YAML nodes"));

  // Nesting: our cap inside secretArgs, yaml-cpp's own guard beyond that.
  std::string deep = "- objectName: a\n  secretPath: p\n  secretArgs: {x: " + std::string(40, '[') +
                     std::string(40, ']') + "}";
  r = ParseObjects(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("nested more than 32 levels deep"));
  r = ParseObjects(std::string(100000, '[') + std::string(100000, ']'));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not valid YAML"));
  std::string dashes;
  for (int i = 0; i < 3000; ++i) dashes += "- ";
  r = ParseObjects(dashes + "x");
  ASSERT_FALSE(r.ok());

  std::string big_args = "- objectName: a\n  secretPath: p\n  secretArgs:\n    v: " +
                         std::string(kMaxSecretArgsBytes, 'A') + "\n";
  r = ParseObjects(big_args);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("secretArgs are larger than"));
  std::string long_path = "- objectName: a\n  secretPath: " + std::string(kMaxFieldBytes + 1, 'p');
  EXPECT_THAT(std::string(ParseObjects(long_path).status().message()),
              HasSubstr("secretPath is longer than 4096 bytes"));
}

TEST(CsiParamsTest, ObjectNames) {
  for (const char* ok : {"a", "api-keys.json", "dir/file", ".hidden", "a..b"}) {
    EXPECT_TRUE(CheckObjectName(ok).ok()) << ok;
  }
  for (const char* bad : {"", "/a", "..", "../a", "..a", "a/..", "a/./b", "a/", "a\tb"}) {
    EXPECT_FALSE(CheckObjectName(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace strongroom::csi
