// The injector's mutation (cli/injector/mutate.h) on real pod specs, as the apiserver sends them
// after its own admission plugins (the service-account token volume already mounted). Each patch
// is applied with nlohmann's RFC 6902 implementation and the patched pod is checked, including
// the agent configuration decoded from VAULT_CONFIG. Behaviour follows the Vault Agent
// injector (vault-k8s agent-inject/agent: agent.go Patch, container_*.go, config.go).
#include "cli/injector/mutate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/escaping.h"

namespace strongroom::injector {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kApiKeysTemplate[] =
    "{{- with secret \"secret/data/lobstack/api-keys\" -}}\n"
    "export ANTHROPIC_API_KEY=\"{{ .Data.data.anthropic_api_key }}\"\n"
    "export OPENAI_API_KEY=\"{{ .Data.data.openai_api_key }}\"\n"
    "export STRIPE_SECRET_KEY=\"{{ .Data.data.stripe_secret_key }}\"\n"
    "{{- end -}}\n";

constexpr char kTokenMountPath[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// The seed pod as kube-apiserver hands it to a mutating webhook: a Deployment's pod with the
// projected service-account token volume the ServiceAccount admission plugin added.
json SeedPod() {
  return json::parse(R"({
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
      "generateName": "lobstack-api-7d9f8b6c5-",
      "namespace": "lobstack",
      "labels": {"app": "lobstack-api", "pod-template-hash": "7d9f8b6c5"},
      "annotations": {
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "lobstack-api",
        "vault.hashicorp.com/agent-inject-secret-api-keys": "secret/data/lobstack/api-keys"
      }
    },
    "spec": {
      "serviceAccountName": "lobstack-api",
      "containers": [{
        "name": "api",
        "image": "registry.example/lobstack/api:1.4.2",
        "command": ["/bin/sh", "-c", ". /vault/secrets/api-keys && exec node server.js"],
        "ports": [{"containerPort": 3000, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "volumeMounts": [{
          "name": "kube-api-access-x7k2p",
          "readOnly": true,
          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"
        }],
        "terminationMessagePath": "/dev/termination-log",
        "imagePullPolicy": "IfNotPresent"
      }],
      "restartPolicy": "Always",
      "dnsPolicy": "ClusterFirst",
      "securityContext": {},
      "volumes": [{
        "name": "kube-api-access-x7k2p",
        "projected": {
          "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
          ],
          "defaultMode": 420
        }
      }]
    }
  })");
}

json WithTemplate(json pod) {
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-template-api-keys"] =
      kApiKeysTemplate;
  return pod;
}

json Review(const json& pod, std::string operation = "CREATE") {
  return json{
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
        {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
        {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
        {"namespace", "lobstack"},
        {"operation", operation},
        {"userInfo", {{"username", "system:serviceaccount:kube-system:replicaset-controller"}}},
        {"object", pod},
        {"dryRun", false}}}};
}

InjectorDefaults Defaults() {
  InjectorDefaults d;
  d.vault_address = "https://strongroom.strongroom.svc:8200";
  d.agent_image = "registry.example/strongroom:0.9.0";
  return d;
}

struct Outcome {
  json response;  // AdmissionReview.response
  json patch;     // decoded, or null
  std::string log_line;
};

Outcome Admit(const json& review, const InjectorDefaults& defaults = Defaults()) {
  absl::StatusOr<MutationResult> r = Mutate(review.dump(), defaults);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  json answer = json::parse(r->response);
  EXPECT_EQ(answer["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(answer["kind"], "AdmissionReview");
  Outcome o;
  o.response = answer["response"];
  o.log_line = r->log_line;
  EXPECT_EQ(o.response["uid"], review["request"]["uid"]);
  if (o.response.contains("patch")) {
    EXPECT_EQ(o.response["patchType"], "JSONPatch");
    std::string raw;
    EXPECT_TRUE(absl::Base64Unescape(o.response["patch"].get<std::string>(), &raw));
    o.patch = json::parse(raw);
  }
  return o;
}

// Runs the mutation and applies its patch; fails the test when there is none.
json Patched(const json& pod, const InjectorDefaults& defaults = Defaults()) {
  Outcome o = Admit(Review(pod), defaults);
  EXPECT_EQ(o.response["allowed"], true) << o.response.dump();
  EXPECT_TRUE(o.patch.is_array()) << o.response.dump();
  if (!o.patch.is_array()) return pod;
  return pod.patch(o.patch);
}

const json* Named(const json& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const json& item : list) {
    if (item.value("name", "") == name) return &item;
  }
  return nullptr;
}

int CountNamed(const json& list, const std::string& name) {
  int n = 0;
  if (list.is_array()) {
    for (const json& item : list) n += item.value("name", "") == name ? 1 : 0;
  }
  return n;
}

std::string EnvOf(const json& container, const std::string& name) {
  json env = container.value("env", json::array());
  const json* e = Named(env, name);
  return e ? e->value("value", "") : "";
}

json ConfigOf(const json& container) {
  std::string raw;
  EXPECT_TRUE(absl::Base64Unescape(EnvOf(container, "VAULT_CONFIG"), &raw));
  return json::parse(raw);
}

// Mount path -> volume name of a container.
std::map<std::string, std::string> MountsOf(const json& container) {
  std::map<std::string, std::string> out;
  for (const json& m : container.value("volumeMounts", json::array())) {
    EXPECT_EQ(out.count(m["mountPath"]), 0u) << "duplicate mount " << m["mountPath"];
    out[m["mountPath"]] = m["name"];
  }
  return out;
}

json Refused(const json& pod) {
  Outcome o = Admit(Review(pod));
  EXPECT_EQ(o.response["allowed"], false) << o.response.dump();
  EXPECT_FALSE(o.response.contains("patch"));
  EXPECT_EQ(o.response["status"]["code"], 400);
  EXPECT_EQ(o.response["status"]["status"], "Failure");
  return o.response["status"];
}

void ExpectHardened(const json& c) {
  const json& sc = c["securityContext"];
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_FALSE(sc.contains("privileged"));
}

TEST(Mutate, SeedPodGetsInitSidecarVolumesAndConfig) {
  json pod = WithTemplate(SeedPod());
  Outcome o = Admit(Review(pod));
  ASSERT_EQ(o.response["allowed"], true);
  EXPECT_FALSE(o.response.contains("warnings")) << o.response.dump();
  EXPECT_EQ(o.log_line,
            "lobstack/lobstack-api-7d9f8b6c5-*: injected (init+sidecar, 1 template, 0 warnings)");
  json p = pod.patch(o.patch);

  EXPECT_EQ(p["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"], "injected");
  // Volumes: the pod's own, then home-init, home-sidecar and the in-memory secrets volume.
  const json& volumes = p["spec"]["volumes"];
  ASSERT_EQ(volumes.size(), 4u);
  EXPECT_EQ(volumes[0]["name"], "kube-api-access-x7k2p");
  for (const char* name : {"home-init", "home-sidecar", "vault-secrets"}) {
    const json* v = Named(volumes, name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ((*v)["emptyDir"]["medium"], "Memory") << name;
  }
  // The app container keeps what it had and mounts the secrets.
  const json& api = p["spec"]["containers"][0];
  EXPECT_EQ(api["name"], "api");
  EXPECT_EQ(api["image"], "registry.example/lobstack/api:1.4.2");
  auto api_mounts = MountsOf(api);
  EXPECT_EQ(api_mounts["/vault/secrets"], "vault-secrets");
  EXPECT_EQ(api_mounts[kTokenMountPath], "kube-api-access-x7k2p");

  ASSERT_EQ(p["spec"]["initContainers"].size(), 1u);
  ASSERT_EQ(p["spec"]["containers"].size(), 2u);
  const json& init = p["spec"]["initContainers"][0];
  const json& sidecar = p["spec"]["containers"][1];
  EXPECT_EQ(init["name"], "vault-agent-init");
  EXPECT_EQ(sidecar["name"], "vault-agent");
  for (const json* c : {&init, &sidecar}) {
    EXPECT_EQ((*c)["image"], "registry.example/strongroom:0.9.0");
    EXPECT_EQ((*c)["command"],
              json::array({"/usr/bin/strongroom", "agent", "-config-env=VAULT_CONFIG"}));
    EXPECT_FALSE(c->contains("args"));
    ExpectHardened(*c);
    EXPECT_EQ((*c)["securityContext"]["runAsUser"], 100);
    EXPECT_EQ((*c)["securityContext"]["runAsGroup"], 1000);
    EXPECT_EQ((*c)["resources"], json::parse(R"({"limits":{"cpu":"500m","memory":"128Mi"},
                             "requests":{"cpu":"250m","memory":"64Mi"}})"));
    EXPECT_EQ(EnvOf(*c, "VAULT_LOG_LEVEL"), "info");
    EXPECT_EQ(EnvOf(*c, "VAULT_LOG_FORMAT"), "standard");
    auto mounts = MountsOf(*c);
    EXPECT_EQ(mounts["/vault/secrets"], "vault-secrets");
    EXPECT_EQ(mounts[kTokenMountPath], "kube-api-access-x7k2p");
    EXPECT_EQ(mounts["/home/vault"], c == &init ? "home-init" : "home-sidecar");
    for (const json& m : (*c)["volumeMounts"]) {
      if (m["mountPath"] == kTokenMountPath) {
        EXPECT_EQ(m["readOnly"], true);
      }
    }
  }

  json init_config = ConfigOf(init);
  json expected = json::parse(R"({
    "auto_auth": {
      "method": {"type": "kubernetes", "mount_path": "auth/kubernetes",
                 "config": {"role": "lobstack-api",
                            "token_path": "/var/run/secrets/kubernetes.io/serviceaccount/token"}},
      "sink": [{"type": "file", "config": {"path": "/home/vault/.vault-token"}}]
    },
    "exit_after_auth": true,
    "pid_file": "/home/vault/.pid",
    "vault": {"address": "https://strongroom.strongroom.svc:8200", "tls_skip_verify": false},
    "template": [{"destination": "/vault/secrets/api-keys", "left_delimiter": "{{",
                  "right_delimiter": "}}", "error_on_missing_key": false}],
    "template_config": {"exit_on_retry_failure": true}
  })");
  expected["template"][0]["contents"] = kApiKeysTemplate;
  EXPECT_EQ(init_config, expected) << init_config.dump(2);
  json sidecar_config = ConfigOf(sidecar);
  expected["exit_after_auth"] = false;
  EXPECT_EQ(sidecar_config, expected);
}

TEST(Mutate, EveryContainerAndInitContainerMountsTheSecrets) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["containers"].push_back(json::parse(R"({
    "name": "worker", "image": "registry.example/lobstack/worker:1.4.2",
    "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true,
                      "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]})"));
  pod["spec"]["containers"].push_back(json::parse(R"({
    "name": "metrics", "image": "registry.example/exporter:2"})"));
  pod["spec"]["initContainers"] = json::parse(R"([{
    "name": "migrate", "image": "registry.example/lobstack/api:1.4.2",
    "command": ["node", "migrate.js"]}])");
  json p = Patched(pod);
  const json& containers = p["spec"]["containers"];
  ASSERT_EQ(containers.size(), 4u);
  for (const char* name : {"api", "worker", "metrics"}) {
    EXPECT_EQ(MountsOf(*Named(containers, name))["/vault/secrets"], "vault-secrets") << name;
  }
  EXPECT_EQ(containers[3]["name"], "vault-agent");
  // Init containers mount the secrets too (pre-populated before they run: the agent goes last
  // unless agent-init-first), as the Vault injector does.
  const json& inits = p["spec"]["initContainers"];
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits[0]["name"], "migrate");
  EXPECT_EQ(MountsOf(inits[0])["/vault/secrets"], "vault-secrets");
  EXPECT_EQ(inits[1]["name"], "vault-agent-init");

  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-init-first"] = "true";
  json first = Patched(pod);
  EXPECT_EQ(first["spec"]["initContainers"][0]["name"], "vault-agent-init");
  EXPECT_EQ(first["spec"]["initContainers"][1]["name"], "migrate");
  EXPECT_EQ(MountsOf(first["spec"]["initContainers"][1])["/vault/secrets"], "vault-secrets");

  // agent-inject-containers limits the app containers (init containers still get the mount).
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-containers"] = "api, worker";
  json some = Patched(pod);
  EXPECT_EQ(MountsOf(*Named(some["spec"]["containers"], "api")).count("/vault/secrets"), 1u);
  EXPECT_EQ(MountsOf(*Named(some["spec"]["containers"], "metrics")).count("/vault/secrets"), 0u);
}

TEST(Mutate, PodWithoutInitContainersOrVolumesKeys) {
  json pod = WithTemplate(SeedPod());
  pod["spec"].erase("volumes");  // a token mount whose volume another webhook adds
  json p = Patched(pod);
  EXPECT_EQ(p["spec"]["volumes"].size(), 3u);
  EXPECT_EQ(p["spec"]["initContainers"].size(), 1u);
}

TEST(Mutate, AlreadyInjectedIsLeftAlone) {
  json pod = Patched(WithTemplate(SeedPod()));
  Outcome o = Admit(Review(pod));
  EXPECT_EQ(o.response["allowed"], true);
  EXPECT_FALSE(o.response.contains("patch"));
  EXPECT_THAT(o.log_line, HasSubstr("not injected (already injected)"));
}

TEST(Mutate, StatusUpdateReinjectsWithoutDuplicates) {
  json pod = Patched(WithTemplate(SeedPod()));
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"] = "update";
  pod["metadata"]["annotations"]["vault.hashicorp.com/role"] = "lobstack-api-v2";
  json p = Patched(pod);
  EXPECT_EQ(p["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"], "injected");
  EXPECT_EQ(CountNamed(p["spec"]["containers"], "vault-agent"), 1);
  EXPECT_EQ(CountNamed(p["spec"]["initContainers"], "vault-agent-init"), 1);
  for (const char* v : {"home-init", "home-sidecar", "vault-secrets", "kube-api-access-x7k2p"}) {
    EXPECT_EQ(CountNamed(p["spec"]["volumes"], v), 1) << v;
  }
  MountsOf(p["spec"]["containers"][0]);  // fails on a duplicate mount path
  EXPECT_EQ(ConfigOf(p["spec"]["containers"][1])["auto_auth"]["method"]["config"]["role"],
            "lobstack-api-v2");
}

TEST(Mutate, InjectedPodWithoutStatusIsRefused) {
  json pod = Patched(WithTemplate(SeedPod()));
  pod["metadata"]["annotations"].erase("vault.hashicorp.com/agent-inject-status");
  json status = Refused(pod);
  EXPECT_THAT(status["message"].get<std::string>(),
              HasSubstr("already has a container named vault-agent"));
}

TEST(Mutate, PrePopulateFalseHasNoInitContainer) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["initContainers"] = json::parse(R"([{"name": "migrate", "image": "m:1"}])");
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-pre-populate"] = "false";
  json p = Patched(pod);
  ASSERT_EQ(p["spec"]["initContainers"].size(), 1u);
  EXPECT_EQ(p["spec"]["initContainers"][0]["name"], "migrate");
  EXPECT_FALSE(p["spec"]["initContainers"][0].contains("volumeMounts"));
  EXPECT_EQ(Named(p["spec"]["volumes"], "home-init"), nullptr);
  EXPECT_NE(Named(p["spec"]["volumes"], "home-sidecar"), nullptr);
  EXPECT_EQ(ConfigOf(*Named(p["spec"]["containers"], "vault-agent"))["exit_after_auth"], false);
}

TEST(Mutate, PrePopulateOnlyHasNoSidecar) {
  json pod = WithTemplate(SeedPod());
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-pre-populate-only"] = "true";
  json p = Patched(pod);
  EXPECT_EQ(p["spec"]["containers"].size(), 1u);
  EXPECT_EQ(Named(p["spec"]["volumes"], "home-sidecar"), nullptr);
  EXPECT_NE(Named(p["spec"]["volumes"], "home-init"), nullptr);
  EXPECT_EQ(ConfigOf(p["spec"]["initContainers"][0])["exit_after_auth"], true);

  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-pre-populate"] = "false";
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("no agent container"));
}

TEST(Mutate, DefaultTemplatesMapAndJson) {
  json pod = SeedPod();  // agent-inject-secret-api-keys only
  const std::string map_template =
      "{{ with secret \"secret/data/lobstack/api-keys\" }}{{ range $k, $v := .Data }}"
      "{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";
  const std::string json_template =
      "{{ with secret \"secret/data/lobstack/api-keys\" }}{{ .Data | toJSON }}\n{{ end }}";
  auto contents = [](const json& p) {
    return ConfigOf(p["spec"]["initContainers"][0])["template"][0]["contents"].get<std::string>();
  };
  EXPECT_EQ(contents(Patched(pod)), map_template);
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-default-template"] = "json";
  EXPECT_EQ(contents(Patched(pod)), json_template);
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-default-template"] = "MAP";
  EXPECT_EQ(contents(Patched(pod)), map_template);
  pod["metadata"]["annotations"].erase("vault.hashicorp.com/agent-inject-default-template");
  InjectorDefaults d = Defaults();
  d.default_template = "json";  // -default-template=json
  EXPECT_EQ(contents(Patched(pod, d)), json_template);
}

TEST(Mutate, PerSecretAnnotationsReachTheConfig) {
  json pod = WithTemplate(SeedPod());
  auto& a = pod["metadata"]["annotations"];
  a["vault.hashicorp.com/agent-inject-file-api-keys"] = "env/api-keys.sh";
  a["vault.hashicorp.com/agent-inject-perms-api-keys"] = "0400";
  a["vault.hashicorp.com/agent-inject-command-api-keys"] = "kill -HUP 1";
  a["vault.hashicorp.com/error-on-missing-key-api-keys"] = "true";
  a["vault.hashicorp.com/agent-inject-secret-Stripe"] = "secret/data/lobstack/stripe";
  a["vault.hashicorp.com/agent-inject-secret-Tenant"] = "secret/data/lobstack/agent/42";
  a["vault.hashicorp.com/preserve-secret-case-Tenant"] = "true";
  a["vault.hashicorp.com/secret-volume-path-Tenant"] = "/etc/tenant";
  a["vault.hashicorp.com/ca-cert"] = "/vault/tls/ca.crt";
  a["vault.hashicorp.com/tls-secret"] = "strongroom-ca";
  a["vault.hashicorp.com/tls-skip-verify"] = "f";
  a["vault.hashicorp.com/template-static-secret-render-interval"] = "1m30s";
  a["vault.hashicorp.com/auth-path"] = "auth/k8s-prod";
  a["vault.hashicorp.com/agent-run-as-user"] = "2000";
  a["vault.hashicorp.com/agent-run-as-group"] = "3000";
  a["vault.hashicorp.com/agent-limits-cpu"] = "";  // no CPU limit, as with Vault
  a["vault.hashicorp.com/agent-requests-mem"] = "32Mi";
  a["vault.hashicorp.com/agent-inject-token"] = "true";
  a["vault.hashicorp.com/service"] = "https://strongroom-dr.strongroom.svc:8200";
  json p = Patched(pod);
  const json& sidecar = *Named(p["spec"]["containers"], "vault-agent");
  json config = ConfigOf(sidecar);
  EXPECT_EQ(config["vault"], json::parse(R"({"address": "https://strongroom-dr.strongroom.svc:8200",
                                             "ca_cert": "/vault/tls/ca.crt", "tls_skip_verify": false})"));
  EXPECT_EQ(config["auto_auth"]["method"]["mount_path"], "auth/k8s-prod");
  ASSERT_EQ(config["auto_auth"]["sink"].size(), 2u);
  EXPECT_EQ(config["auto_auth"]["sink"][1]["config"]["path"], "/vault/secrets/token");
  EXPECT_EQ(config["template_config"]["static_secret_render_interval"], "1m30s");
  const json& t = config["template"];
  ASSERT_EQ(t.size(), 3u);  // sorted by file name: Tenant, api-keys, stripe
  EXPECT_EQ(t[0]["destination"], "/etc/tenant/Tenant");
  EXPECT_EQ(t[1]["destination"], "/vault/secrets/env/api-keys.sh");
  EXPECT_EQ(t[1]["perms"], "0400");
  EXPECT_EQ(t[1]["command"], "kill -HUP 1");
  EXPECT_EQ(t[1]["error_on_missing_key"], true);
  EXPECT_EQ(t[2]["destination"], "/vault/secrets/stripe");
  EXPECT_FALSE(t[2].contains("perms"));
  EXPECT_FALSE(t[2].contains("command"));
  EXPECT_EQ(sidecar["securityContext"]["runAsUser"], 2000);
  EXPECT_EQ(sidecar["securityContext"]["runAsGroup"], 3000);
  EXPECT_EQ(sidecar["resources"], json::parse(R"({"limits":{"memory":"128Mi"},
                                                  "requests":{"cpu":"250m","memory":"32Mi"}})"));
  // The custom secret directory is a second in-memory volume, mounted everywhere.
  const json* custom = Named(p["spec"]["volumes"], "vault-secrets-custom-0");
  ASSERT_NE(custom, nullptr);
  EXPECT_EQ((*custom)["emptyDir"]["medium"], "Memory");
  EXPECT_EQ(MountsOf(p["spec"]["containers"][0])["/etc/tenant"], "vault-secrets-custom-0");
  EXPECT_EQ(MountsOf(sidecar)["/etc/tenant"], "vault-secrets-custom-0");
  EXPECT_EQ(MountsOf(sidecar)["/vault/tls"], "vault-tls-secrets");
  EXPECT_EQ((*Named(p["spec"]["volumes"], "vault-tls-secrets"))["secret"]["secretName"],
            "strongroom-ca");
}

TEST(Mutate, RunAsSameUserTakesTheFirstContainersUid) {
  json pod = WithTemplate(SeedPod());
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-run-as-same-user"] = "true";
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("runAsUser"));
  pod["spec"]["containers"][0]["securityContext"] = {{"runAsUser", 4242}};
  json p = Patched(pod);
  EXPECT_EQ(p["spec"]["initContainers"][0]["securityContext"]["runAsUser"], 4242);
  pod["spec"]["containers"][0]["securityContext"] = {{"runAsUser", 0}};
  Refused(pod);
}

TEST(Mutate, NamedProjectedTokenVolume) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["volumes"].push_back(json::parse(R"({"name": "vault-token", "projected": {
      "sources": [{"serviceAccountToken": {"audience": "strongroom", "path": "vault-jwt",
                                           "expirationSeconds": 600}}]}})"));
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-service-account-token-volume-name"] =
      "vault-token";
  json p = Patched(pod);
  const json& init = p["spec"]["initContainers"][0];
  EXPECT_EQ(MountsOf(init)["/var/run/secrets/vault.hashicorp.com/serviceaccount"], "vault-token");
  EXPECT_EQ(ConfigOf(init)["auto_auth"]["method"]["config"]["token_path"],
            "/var/run/secrets/vault.hashicorp.com/serviceaccount/vault-jwt");
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-service-account-token-volume-name"] =
      "missing";
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("no projected volume missing"));
}

TEST(Mutate, NoServiceAccountTokenIsRefused) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["automountServiceAccountToken"] = false;
  pod["spec"]["containers"][0].erase("volumeMounts");
  pod["spec"]["volumes"] = json::array();
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(),
              HasSubstr("mounts no service-account token"));
}

TEST(Mutate, ConflictingMountPathIsRefused) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["containers"][0]["volumeMounts"].push_back(
      {{"name", "kube-api-access-x7k2p"}, {"mountPath", "/vault/secrets"}});
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(),
              HasSubstr("container api already mounts a volume at /vault/secrets"));
}

struct BadCase {
  const char* annotation;  // after vault.hashicorp.com/
  const char* value;
  const char* message;  // expected in the refusal
};

TEST(Mutate, BadAnnotationsAreRefusedWithTheirName) {
  const BadCase kCases[] = {
      {"agent-inject", "yes", "agent-inject: not a boolean"},
      {"agent-inject-status", "done", "agent-inject-status: must be"},
      {"role", "lobstack api", "role: not a Vault role name"},
      {"role", "", "role: not a Vault role name"},
      {"agent-run-as-user", "0", "agent-run-as-user: not an id from 1"},
      {"agent-run-as-user", "-5", "agent-run-as-user: not an id"},
      {"agent-run-as-user", "4294967296", "agent-run-as-user: not an id"},
      {"agent-run-as-group", "wheel", "agent-run-as-group: not an id from 0"},
      {"agent-limits-cpu", "lots", "agent-limits-cpu: not a Kubernetes quantity"},
      {"agent-limits-mem", "128MB", "agent-limits-mem: not a Kubernetes quantity"},
      {"agent-requests-mem", "-64Mi", "agent-requests-mem: not a Kubernetes quantity"},
      {"agent-requests-cpu", "2",
       "agent-requests-cpu: is more than vault.hashicorp.com/agent-limits-cpu"},
      {"agent-inject-perms-api-keys", "999", "agent-inject-perms-api-keys: not octal"},
      {"agent-inject-perms-api-keys", "rw-r--r--", "agent-inject-perms-api-keys: not octal"},
      {"agent-inject-file-api-keys", "../../etc/passwd",
       "agent-inject-file-api-keys: not a relative"},
      {"agent-inject-file-api-keys", "/etc/passwd", "agent-inject-file-api-keys: not a relative"},
      {"secret-volume-path", "vault/secrets", "secret-volume-path: not an absolute"},
      {"secret-volume-path", "/vault/../etc", "secret-volume-path: not an absolute"},
      {"agent-pre-populate", "maybe", "agent-pre-populate: not a boolean"},
      {"agent-pre-populate-only", "yes", "agent-pre-populate-only: not a boolean"},
      {"tls-skip-verify", "nope", "tls-skip-verify: not a boolean"},
      {"template-static-secret-render-interval", "5 minutes",
       "template-static-secret-render-interval: not a duration"},
      {"template-static-secret-render-interval", "-5m",
       "template-static-secret-render-interval: a negative duration"},
      {"agent-inject-default-template", "yaml", "agent-inject-default-template: must be"},
      {"agent-image", "strongroom agent:1", "agent-image: not a container image reference"},
      {"auth-path", "/auth/kubernetes", "auth-path: not a Vault auth mount path"},
      {"auth-path", "auth/../sys", "auth-path: not a Vault auth mount path"},
      {"ca-cert", "ca.crt", "ca-cert: not an absolute file path"},
      {"service", "strongroom:8200", "service: not an http:// or https:// address"},
      {"agent-inject-secret-api-keys", "secret/data/\"}}{{ x",
       "agent-inject-secret-api-keys: not a Vault path"},
      {"agent-inject-secret-bad name", "secret/data/x", "the secret name is not"},
      {"agent-configmap", "my-config", "agent-configmap: not supported"},
      {"auth-type", "approle",
       "auth-type: strongroom's agent authenticates with \"kubernetes\" only"},
      {"agent-inject-template-file-api-keys", "/vault/templates/x",
       "template files are not supported"},
      {"agent-cache-enable", "true", "agent-cache-enable: the agent cache is not supported"},
      {"error-on-missing-key-api-keys", "sometimes",
       "error-on-missing-key-api-keys: not a boolean"},
      {"agent-inject-containers", "api,,worker", "agent-inject-containers: not a comma-separated"},
      {"tls-secret", "Not_A_Secret", "tls-secret: not a Kubernetes Secret name"},
      {"log-level", "verbose", "log-level: must be"},
  };
  for (const BadCase& c : kCases) {
    json pod = WithTemplate(SeedPod());
    pod["metadata"]["annotations"][std::string("vault.hashicorp.com/") + c.annotation] = c.value;
    json status = Refused(pod);
    std::string message = status["message"];
    EXPECT_THAT(message, HasSubstr(c.message)) << c.annotation << "=" << c.value;
    EXPECT_EQ(status["reason"], "BadRequest");
    // The refusal names the annotation, never echoes its value.
    if (std::string(c.value).size() > 3) {
      EXPECT_THAT(message, ::testing::Not(HasSubstr(c.value))) << c.annotation;
    }
  }
}

TEST(Mutate, MissingRoleIsRefused) {
  json pod = WithTemplate(SeedPod());
  pod["metadata"]["annotations"].erase("vault.hashicorp.com/role");
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("role: missing"));
  pod["metadata"]["annotations"]["vault.hashicorp.com/auth-config-role"] = "lobstack-api";
  json p = Patched(pod);
  EXPECT_EQ(ConfigOf(p["spec"]["initContainers"][0])["auto_auth"]["method"]["config"]["role"],
            "lobstack-api");
}

TEST(Mutate, UnknownAnnotationsAreWarnings) {
  json pod = WithTemplate(SeedPod());
  auto& a = pod["metadata"]["annotations"];
  a["vault.hashicorp.com/agent-inject-secrets-typo"] = "secret/data/x";
  a["vault.hashicorp.com/agent-revoke-on-shutdown"] = "true";
  a["vault.hashicorp.com/agent-inject-file-nothing"] = "x.txt";
  a["vault.hashicorp.com/agent-set-security-context"] = "false";
  a["example.com/unrelated"] = "ignored silently";
  Outcome o = Admit(Review(pod));
  ASSERT_EQ(o.response["allowed"], true);
  ASSERT_TRUE(o.patch.is_array());
  json warnings = o.response["warnings"];
  ASSERT_EQ(warnings.size(), 4u) << warnings.dump();
  std::string all = warnings.dump();
  EXPECT_THAT(all, HasSubstr("vault.hashicorp.com/agent-inject-secrets-typo: unknown annotation"));
  EXPECT_THAT(all,
              HasSubstr("vault.hashicorp.com/agent-revoke-on-shutdown: ignored, not supported"));
  EXPECT_THAT(
      all,
      HasSubstr("vault.hashicorp.com/agent-inject-file-nothing: ignored, no agent-inject-secret"));
  EXPECT_THAT(all, HasSubstr("agent-set-security-context: ignored, strongroom always"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("secret/data/x")));  // keys only, never values
  EXPECT_THAT(o.log_line, HasSubstr("4 warnings"));
  json p = pod.patch(o.patch);
  ExpectHardened(p["spec"]["containers"][1]);
}

TEST(Mutate, PodsWithoutTheAnnotationAreUntouched) {
  json pod = SeedPod();
  pod["metadata"].erase("annotations");
  Outcome o = Admit(Review(pod));
  EXPECT_EQ(o.response["allowed"], true);
  EXPECT_FALSE(o.response.contains("patch"));
  EXPECT_FALSE(o.response.contains("patchType"));
  EXPECT_EQ(o.log_line,
            "lobstack/lobstack-api-7d9f8b6c5-*: not injected (no agent-inject annotation)");

  pod["metadata"]["annotations"] = {{"vault.hashicorp.com/agent-inject", "false"},
                                    {"vault.hashicorp.com/agent-run-as-user", "root"}};
  o = Admit(Review(pod));
  EXPECT_EQ(o.response["allowed"], true);
  EXPECT_FALSE(o.response.contains("patch"));
}

TEST(Mutate, OnlyPodCreatesAreMutated) {
  json pod = WithTemplate(SeedPod());
  Outcome update = Admit(Review(pod, "UPDATE"));
  EXPECT_EQ(update.response["allowed"], true);
  EXPECT_FALSE(update.response.contains("patch"));
  json review = Review(pod);
  review["request"]["kind"]["kind"] = "Deployment";
  review["request"]["kind"]["group"] = "apps";
  Outcome deployment = Admit(review);
  EXPECT_EQ(deployment.response["allowed"], true);
  EXPECT_FALSE(deployment.response.contains("patch"));
}

TEST(Mutate, MalformedPodsAreRefused) {
  json pod = WithTemplate(SeedPod());
  pod["spec"]["containers"] = json::object();
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(),
              HasSubstr("spec.containers is not an array"));
  pod["spec"]["containers"] = json::array();
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("no containers"));
  pod = WithTemplate(SeedPod());
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-perms-api-keys"] = 644;
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("is not a string"));
}

TEST(Mutate, AnnotationsOverKubernetesLimitAreRefused) {
  json pod = SeedPod();
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-template-api-keys"] =
      std::string(256 * 1024, 'x');
  EXPECT_THAT(Refused(pod)["message"].get<std::string>(), HasSubstr("more than 256 KiB"));
}

TEST(Mutate, NotAnAdmissionReviewIsAnError) {
  InjectorDefaults d = Defaults();
  EXPECT_FALSE(Mutate("{bad json", d).ok());
  EXPECT_FALSE(Mutate("", d).ok());
  EXPECT_FALSE(Mutate("[]", d).ok());
  json review = Review(SeedPod());
  review["apiVersion"] = "admission.k8s.io/v1beta1";
  EXPECT_FALSE(Mutate(review.dump(), d).ok());
  review = Review(SeedPod());
  review["request"].erase("uid");
  EXPECT_FALSE(Mutate(review.dump(), d).ok());
  // Nested past the depth limit: refused before Boost.JSON builds it.
  std::string deep = std::string(100, '[') + std::string(100, ']');
  review = Review(SeedPod());
  std::string text = review.dump();
  text.insert(text.size() - 1, ",\"x\":" + deep);
  absl::StatusOr<MutationResult> r = Mutate(text, d);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("depth"));
}

}  // namespace
}  // namespace strongroom::injector

namespace strongroom::injector {
namespace {

// Hostile input: every truncation of a real review and a few thousand single-byte changes of it
// come back as an answer or an error, never a crash (the ASan build runs this too).
TEST(Mutate, TruncatedAndCorruptedReviewsNeverCrash) {
  json pod = WithTemplate(SeedPod());
  pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"] = "update";
  const std::string text = Review(pod).dump();
  const InjectorDefaults d = Defaults();
  for (size_t n = 0; n < text.size(); ++n) {
    absl::StatusOr<MutationResult> r = Mutate(std::string_view(text).substr(0, n), d);
    EXPECT_FALSE(r.ok()) << n;  // a prefix of a JSON object is never a whole one
  }
  uint32_t seed = 12345;
  int answered = 0;
  for (int i = 0; i < 4000; ++i) {
    seed = seed * 1103515245u + 12345u;
    std::string bad = text;
    bad[(seed >> 8) % bad.size()] = static_cast<char>(seed >> 24);
    absl::StatusOr<MutationResult> r = Mutate(bad, d);
    if (r.ok()) {
      ++answered;
      EXPECT_TRUE(json::accept(r->response));
    }
  }
  EXPECT_GT(answered, 0);
}

}  // namespace
}  // namespace strongroom::injector

namespace strongroom::injector {
namespace {

// The review's amplification: every container gets a mount per secret directory, so a pod with
// thousands of containers and 128 secrets in their own directories made a 70 MB answer. Both
// counts are capped and refused with a reason.
TEST(MutateBounds, TooManyContainersOrSecretDirectoriesAreRefused) {
  json crowded = WithTemplate(SeedPod());
  for (int i = 0; i < 64; ++i) {
    crowded["spec"]["containers"].push_back(
        {{"name", "c" + std::to_string(i)}, {"image", "registry.example/x:1"}});
  }
  EXPECT_THAT(Refused(crowded)["message"].get<std::string>(),
              HasSubstr("more than 64 containers and init containers together"));
  json dirs = WithTemplate(SeedPod());
  for (int i = 0; i < 17; ++i) {
    const std::string n = "s" + std::to_string(i);
    dirs["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-secret-" + n] =
        "secret/data/" + n;
    dirs["metadata"]["annotations"]["vault.hashicorp.com/secret-volume-path-" + n] =
        "/vault/dir" + std::to_string(i);
  }
  EXPECT_THAT(Refused(dirs)["message"].get<std::string>(),
              HasSubstr("more than 16 secret directories"));
}

// What the agent would refuse at start is refused at admission (the review found pods admitted
// whose agents exited at once).
TEST(MutateBounds, ConfigurationsTheAgentWouldRefuseAreRefused) {
  const BadCase kCases[] = {
      {"template-static-secret-render-interval", "500ms", "static_secret_render_interval"},
      {"template-static-secret-render-interval", "0", "static_secret_render_interval"},
      {"auth-config-foo", "bar", "unknown key \"foo\" for kubernetes"},
      {"agent-inject-template-api-keys", "{{ nosuchfunction }}", "function \"nosuchfunction\""},
      {"agent-inject-template-api-keys", "{{ if }}", "template"},
      {"service", "https://user@vault.example", "vault address"},
  };
  for (const BadCase& c : kCases) {
    json pod = WithTemplate(SeedPod());
    pod["metadata"]["annotations"][std::string("vault.hashicorp.com/") + c.annotation] = c.value;
    const std::string message = Refused(pod)["message"].get<std::string>();
    EXPECT_THAT(message, HasSubstr(c.message)) << c.annotation << "=" << c.value;
    if (std::string(c.annotation) != "agent-inject-template-api-keys") {
      EXPECT_THAT(message, Not(HasSubstr(c.value))) << "the refusal echoes the value";
    }
  }
}

TEST(MutateBounds, AppContainersMountTheSecretsReadOnly) {
  json p = Patched(WithTemplate(SeedPod()));
  for (const json& m : (*Named(p["spec"]["containers"], "api"))["volumeMounts"]) {
    if (m["mountPath"] == "/vault/secrets") {
      EXPECT_EQ(m.value("readOnly", false), true);
    }
  }
  for (const json& m : (*Named(p["spec"]["containers"], "vault-agent"))["volumeMounts"]) {
    if (m["mountPath"] == "/vault/secrets") {
      EXPECT_EQ(m.value("readOnly", false), false);
    }
  }
}

}  // namespace
}  // namespace strongroom::injector
