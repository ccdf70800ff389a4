// `strongroom csi-provider` end to end: the real provider process on a Unix socket, a real gRPC
// client generated from the driver's proto playing the Secrets Store CSI Driver, a real dev
// appliance (strongroomd and its workers over HTTP) and the fake Kubernetes API server
// (tests/e2e/fake_kube_server.js) answering the appliance's TokenReviews and the provider's
// TokenRequests. The SecretProviderClass is the shipped example,
// deploy/kubernetes/csi/examples/lobstack-api-secretproviderclass.yaml, with the appliance's
// address. After every test the provider's log (at debug level) is searched for every secret
// value, plaintext and JWT the test used: none may appear.
// Vault API sections: Kubernetes auth login (§5.2), KV v1/v2 read (§3), Transit encrypt (§4),
// token renew-self and revoke-accessor (§2).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "cli/csi/proto/v1alpha1/service.grpc.pb.h"
#include "tests/support/daemon.h"
#include "tests/support/fake_kube.h"

extern char** environ;

namespace strongroom::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kExample[] =
    STRONGROOM_SOURCE_DIR "/deploy/kubernetes/csi/examples/lobstack-api-secretproviderclass.yaml";
constexpr char kNamespace[] = "lobstack-control-plane";
constexpr char kServiceAccount[] = "lobstack-api";
constexpr char kPodUid[] = "6a7b2c1e-0000-4000-8000-00000000c51a";

// The secrets of the test; none may ever show up in the provider's log.
const std::map<std::string, std::string> kApiKeys = {
    {"openai", "sk-live-openai-5d1c9e0f"},
    {"anthropic", "sk-ant-live-77a2b4c1"},
    {"stripe", "rk_live_stripe_9f3e2d"},
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The provider as a child process (its own process group), its output in a file.
class ProviderProcess {
 public:
  ProviderProcess(const std::string& dir, std::vector<std::string> args)
      : socket_(dir + "/vault.sock"), log_(dir + "/provider.log") {
    std::vector<std::string> full = {STRONGROOM_CLI, "csi-provider", "-endpoint=unix://" + socket_,
                                     "-log-level=debug"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    if (posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
  }
  ~ProviderProcess() { Stop(); }

  // Waits until Version answers on the socket.
  bool WaitReady() {
    for (int i = 0; i < 200 && pid_ > 0; ++i) {
      auto stub = Stub();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1alpha1::VersionRequest req;
      req.set_version("v1alpha1");
      v1alpha1::VersionResponse resp;
      if (stub->Version(&ctx, req, &resp).ok()) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::unique_ptr<v1alpha1::CSIDriverProvider::Stub> Stub() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    return v1alpha1::CSIDriverProvider::NewStub(
        grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args));
  }

  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = -1;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    kill(-pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  const std::string& socket() const { return socket_; }
  std::string Log() const { return Slurp(log_); }

 private:
  std::string socket_, log_;
  pid_t pid_ = -1;
};

class CsiProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    kube_ = FakeKube::Start();
    ASSERT_NE(kube_, nullptr);

    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/kv1", {{"type", "kv"}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/transit", {{"type", "transit"}}).status, 204);
    ASSERT_EQ(d_.Root("POST", "/v1/transit/keys/lobstack", json::object()).status, 200);
    ASSERT_EQ(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}).status, 204);
    auto config = d_.Root("POST", "/v1/auth/kubernetes/config",
                          {{"kubernetes_host", kube_->Str("url")},
                           {"kubernetes_ca_cert", kube_->Str("caPem")},
                           {"token_reviewer_jwt", kube_->Str("reviewerToken")}});
    ASSERT_EQ(config.status, 204) << config.body;
    // deploy/kubernetes/init/strongroom-init.sh's policy and role for the example.
    ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/lobstack-api-csi",
                      {{"policy",
                        "path \"secret/data/lobstack/api-keys\" { capabilities = "
                        "[\"read\"] }\n"}})
                  .status,
              204);
    auto role = d_.Root("POST", "/v1/auth/kubernetes/role/lobstack-api-csi",
                        {{"bound_service_account_names", kServiceAccount},
                         {"bound_service_account_namespaces", kNamespace},
                         {"audience", "vault"},
                         {"policies", "lobstack-api-csi"},
                         {"ttl", "1h"},
                         {"max_ttl", "4h"}});
    ASSERT_EQ(role.status, 204) << role.body;
    PutApiKeys(kApiKeys);

    dir_ = d_.dir() + "/csi";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    std::ofstream(dir_ + "/hmac-key") << "0123456789abcdef0123456789abcdef-test-key\n";
  }

  void TearDown() override {
    if (provider_ == nullptr) return;
    // No secret value, plaintext or credential in the provider's log, whatever the test did.
    const std::string log = provider_->Log();
    for (const auto& [key, value] : kApiKeys) EXPECT_THAT(log, Not(HasSubstr(value))) << key;
    for (const std::string& s : extra_secrets_) EXPECT_THAT(log, Not(HasSubstr(s)));
    for (const std::string& jwt : jwts_) EXPECT_THAT(log, Not(HasSubstr(jwt.substr(0, 40))));
    EXPECT_THAT(log, Not(HasSubstr("hvs."))) << "a Vault token in the log";
    EXPECT_THAT(log, Not(HasSubstr("eyJ"))) << "a JWT in the log";
    EXPECT_EQ(provider_->Stop(), 0) << log;
  }

  void PutApiKeys(const std::map<std::string, std::string>& keys) {
    json data = json::object();
    for (const auto& [k, v] : keys) data[k] = v;
    auto r = d_.Root("POST", "/v1/secret/data/lobstack/api-keys", {{"data", data}});
    ASSERT_EQ(r.status, 200) << r.body;
  }

  void StartProvider(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"-vault-addr=http://127.0.0.1:" + std::to_string(d_.port()),
                                     "-hmac-key-file=" + dir_ + "/hmac-key"};
    args.insert(args.end(), extra.begin(), extra.end());
    provider_ = std::make_unique<ProviderProcess>(dir_, args);
    ASSERT_TRUE(provider_->WaitReady()) << provider_->Log();
  }

  // A service-account token of the fake cluster for a pod of `account` (and remembered, to be
  // looked for in the log).
  std::string Jwt(const std::string& account = kServiceAccount,
                  const std::string& audience = "vault") {
    std::string jwt = kube_->Token({{"namespace", kNamespace},
                                    {"name", account},
                                    {"audiences", {audience}},
                                    {"pod", {{"name", "lobstack-api-0"}, {"uid", kPodUid}}}});
    jwts_.push_back(jwt);
    return jwt;
  }

  // The example SecretProviderClass's parameters, pointed at the test's appliance (plain HTTP:
  // no CA), with the pod information and tokens the driver adds.
  json ExampleAttributes(const std::string& jwt) {
    YAML::Node spc = YAML::LoadFile(kExample);
    json a = json::object();
    for (const auto& kv : spc["spec"]["parameters"]) {
      a[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    a["vaultAddress"] = "http://127.0.0.1:" + std::to_string(d_.port());
    a.erase("vaultCACertPath");
    a["csi.storage.k8s.io/pod.name"] = "lobstack-api-0";
    a["csi.storage.k8s.io/pod.namespace"] = kNamespace;
    a["csi.storage.k8s.io/pod.uid"] = kPodUid;
    a["csi.storage.k8s.io/serviceAccount.name"] = kServiceAccount;
    a["csi.storage.k8s.io/ephemeral"] = "true";
    if (!jwt.empty()) {
      a["csi.storage.k8s.io/serviceAccount.tokens"] =
          json({{"vault", {{"token", jwt}, {"expirationTimestamp", "2099-01-01T00:00:00Z"}}}})
              .dump();
    }
    return a;
  }

  grpc::Status Mount(const json& attributes, v1alpha1::MountResponse* response,
                     const std::map<std::string, std::string>& current = {},
                     const std::string& permission = "420") {
    v1alpha1::MountRequest req;
    req.set_attributes(attributes.dump());
    req.set_secrets("{}");
    req.set_target_path("/var/lib/kubelet/pods/" + std::string(kPodUid) +
                        "/volumes/kubernetes.io~csi/api-keys/mount");
    req.set_permission(permission);
    for (const auto& [id, version] : current) {
      auto* v = req.add_current_object_version();
      v->set_id(id);
      v->set_version(version);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return provider_->Stub()->Mount(&ctx, req, response);
  }

  static std::map<std::string, const v1alpha1::File*> Files(const v1alpha1::MountResponse& r) {
    std::map<std::string, const v1alpha1::File*> out;
    for (const auto& f : r.files()) out[f.path()] = &f;
    return out;
  }
  static std::map<std::string, std::string> Versions(const v1alpha1::MountResponse& r) {
    std::map<std::string, std::string> out;
    for (const auto& v : r.object_version()) out[v.id()] = v.version();
    return out;
  }

  Daemon d_;
  std::unique_ptr<FakeKube> kube_;
  std::string dir_;
  std::unique_ptr<ProviderProcess> provider_;
  std::vector<std::string> jwts_;
  std::vector<std::string> extra_secrets_;
};

TEST_F(CsiProviderTest, VersionAndAPrivateSocket) {
  StartProvider();
  auto stub = provider_->Stub();
  grpc::ClientContext ctx;
  v1alpha1::VersionRequest req;
  req.set_version("v1alpha1");
  v1alpha1::VersionResponse resp;
  ASSERT_TRUE(stub->Version(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.version(), "v1alpha1");
  EXPECT_EQ(resp.runtime_name(), "strongroom-csi-provider");
  EXPECT_EQ(resp.runtime_version(), "0.1.0");
  struct stat st {};
  ASSERT_EQ(lstat(provider_->socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // The DaemonSet's probe.
  RunResult check = RunProgram(
      STRONGROOM_CLI, {"csi-provider", "-check", "-endpoint=unix://" + provider_->socket()});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr("strongroom-csi-provider 0.1.0 (API v1alpha1)"));

  // The driver's group, when it does not run as root: the socket is given that group and 0660.
  EXPECT_EQ(provider_->Stop(), 0);
  StartProvider({"-socket-group=4242", "-socket-mode=0660"});
  ASSERT_EQ(lstat(provider_->socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  // A file that is not a socket is never replaced.
  EXPECT_EQ(provider_->Stop(), 0);
  std::ofstream(dir_ + "/vault.sock") << "not a socket";
  RunResult refused =
      RunProgram(STRONGROOM_CLI, {"csi-provider", "-endpoint=" + dir_ + "/vault.sock"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("it exists and is not a socket"));
  EXPECT_EQ(Slurp(dir_ + "/vault.sock"), "not a socket");
  ASSERT_EQ(unlink((dir_ + "/vault.sock").c_str()), 0);
  StartProvider();
}

TEST_F(CsiProviderTest, TheExampleMountsTheApiKeysAsFilesWithTheirModes) {
  StartProvider();
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(ExampleAttributes(Jwt()), &r);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << provider_->Log();
  auto files = Files(r);
  ASSERT_EQ(files.size(), 4u);
  for (const auto& [object, key] :
       std::vector<std::pair<std::string, std::string>>{{"openai-api-key", "openai"},
                                                        {"anthropic-api-key", "anthropic"},
                                                        {"stripe-api-key", "stripe"}}) {
    ASSERT_TRUE(files.count(object)) << object;
    EXPECT_EQ(files[object]->contents(), kApiKeys.at(key)) << object;
    EXPECT_EQ(files[object]->mode(), 0444) << object;
  }
  // Without secretKey: the whole response, as Vault's api.Secret marshals it.
  ASSERT_TRUE(files.count("api-keys.json"));
  EXPECT_EQ(files["api-keys.json"]->mode(), 0444);
  json whole = json::parse(files["api-keys.json"]->contents());
  EXPECT_EQ(whole["data"]["data"]["openai"], kApiKeys.at("openai"));
  EXPECT_EQ(whole["data"]["metadata"]["version"], 1);
  EXPECT_EQ(whole["request_id"], "");
  EXPECT_EQ(whole["lease_duration"], 0);
  EXPECT_EQ(whole["renewable"], false);
  EXPECT_TRUE(whole.contains("warnings"));
  EXPECT_EQ(files["api-keys.json"]->contents().rfind("{\"request_id\":\"\",\"lease_id\":\"\",", 0),
            0u)
      << "api.Secret's field order";
  // One version per object, named by the object.
  auto versions = Versions(r);
  ASSERT_EQ(versions.size(), 4u);
  for (const auto& [id, v] : versions) {
    EXPECT_TRUE(files.count(id)) << id;
    EXPECT_EQ(v.size(), 44u) << id;
  }
  EXPECT_EQ(r.files(0).path(), "openai-api-key") << "files in the order of `objects`";

  // Objects without filePermission get the mount's permission.
  json a = ExampleAttributes(Jwt());
  a["objects"] =
      "- {objectName: openai, secretPath: secret/data/lobstack/api-keys, "
      "secretKey: openai}";
  v1alpha1::MountResponse plain;
  s = Mount(a, &plain, {}, "384");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(plain.files(0).mode(), 0600);
}

TEST_F(CsiProviderTest, AChangedSecretChangesItsVersionOnTheNextMount) {
  StartProvider();
  const json attributes = ExampleAttributes(Jwt());
  v1alpha1::MountResponse first;
  ASSERT_TRUE(Mount(attributes, &first).ok()) << provider_->Log();
  const auto v1 = Versions(first);

  // Unchanged: the same versions, from the cached token.
  v1alpha1::MountResponse second;
  ASSERT_TRUE(Mount(attributes, &second, v1).ok());
  EXPECT_EQ(Versions(second), v1);
  EXPECT_THAT(provider_->Log(), HasSubstr("cached token, unchanged"));

  // Only openai changes: its object and the whole-response object change, the others do not.
  auto keys = kApiKeys;
  keys["openai"] = "sk-live-openai-rotated-61b0";
  extra_secrets_.push_back(keys["openai"]);
  PutApiKeys(keys);
  v1alpha1::MountResponse third;
  ASSERT_TRUE(Mount(attributes, &third, v1).ok());
  const auto v3 = Versions(third);
  EXPECT_NE(v3.at("openai-api-key"), v1.at("openai-api-key"));
  EXPECT_NE(v3.at("api-keys.json"), v1.at("api-keys.json"));
  EXPECT_EQ(v3.at("anthropic-api-key"), v1.at("anthropic-api-key"));
  EXPECT_EQ(v3.at("stripe-api-key"), v1.at("stripe-api-key"));
  EXPECT_EQ(Files(third)["openai-api-key"]->contents(), "sk-live-openai-rotated-61b0");
  EXPECT_THAT(provider_->Log(), HasSubstr("changed: openai-api-key, api-keys.json"));

  // A new provider process with the same key gives the same versions (every node of the
  // DaemonSet shares the key).
  EXPECT_EQ(provider_->Stop(), 0);
  StartProvider();
  v1alpha1::MountResponse fourth;
  ASSERT_TRUE(Mount(attributes, &fourth, v3).ok());
  EXPECT_EQ(Versions(fourth), v3);
}

TEST_F(CsiProviderTest, AnUnauthorisedServiceAccountIsRefused) {
  StartProvider();
  // A pod of another service account in the namespace uses the class: the role's binding
  // refuses its token.
  json a = ExampleAttributes(Jwt("intruder"));
  a["csi.storage.k8s.io/serviceAccount.name"] = "intruder";
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr("login to http://127.0.0.1:"), HasSubstr("(auth/kubernetes, "),
                    HasSubstr("role lobstack-api-csi)"),
                    HasSubstr("as service account lobstack-control-plane/intruder failed: "),
                    HasSubstr("Vault answered 403")));
  EXPECT_EQ(r.files_size(), 0);

  // The right account with a token of another audience (the pod's own, for the API server).
  s = Mount(ExampleAttributes(Jwt(kServiceAccount, "https://kubernetes.default.svc.cluster.local")),
            &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("role lobstack-api-csi"));

  // No token at all, and no Kubernetes API to ask: a clear precondition.
  s = Mount(ExampleAttributes(""), &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("the driver passed no service account token for "
                                           "audience \"vault\" (set tokenRequests"));
  EXPECT_THAT(provider_->Log(), HasSubstr("mount for pod lobstack-control-plane/lobstack-api-0"));
}

TEST_F(CsiProviderTest, AMissingOrForbiddenPathFailsTheMountNamingTheObject) {
  // The policy lets the role read a path that holds nothing (a 404, not a 403).
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/lobstack-api-csi",
                    {{"policy",
                      "path \"secret/data/lobstack/api-keys\" { capabilities = "
                      "[\"read\"] }\npath \"secret/data/lobstack/missing\" { "
                      "capabilities = [\"read\"] }\n"}})
                .status,
            204);
  StartProvider();
  json a = ExampleAttributes(Jwt());
  a["objects"] = std::string(a["objects"]) +
                 "- objectName: missing\n  secretPath: secret/data/lobstack/missing\n";
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_EQ(s.error_message(),
            "object \"missing\" (GET secret/data/lobstack/missing): Vault answered 404: no secret "
            "at this path");
  EXPECT_EQ(r.files_size(), 0) << "one failing object fails the mount";

  a["objects"] = "- objectName: agent\n  secretPath: secret/data/lobstack/agent/7\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(),
              HasSubstr("object \"agent\" (GET secret/data/lobstack/agent/7): Vault answered 403: "
                        "permission denied"));

  a["objects"] =
      "- objectName: nokey\n  secretPath: secret/data/lobstack/api-keys\n"
      "  secretKey: aws\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(s.error_message(),
            "object \"nokey\" (GET secret/data/lobstack/api-keys): key \"aws\" does not exist at "
            "the secret path");
  EXPECT_THAT(provider_->Log(), HasSubstr("failed: object \"missing\""));
}

TEST_F(CsiProviderTest, AMountIsBoundedInTheAnswersItHoldsAndInTime) {
  // Each distinct request's answer is held until the mount ends: past the bound the mount fails
  // naming the object that went over (the example's one KV answer, padded to over 1 KiB).
  auto padded = kApiKeys;
  padded["padding"] = std::string(1500, 'p');
  PutApiKeys(padded);
  StartProvider({"-max-mount-answers-bytes=1024"});
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(ExampleAttributes(Jwt()), &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("the mount's Vault answers total more than 1024 bytes"));
  EXPECT_EQ(r.files_size(), 0);
  // The time bound is checked between requests: with 1ns none may start.
  EXPECT_EQ(provider_->Stop(), 0);
  StartProvider({"-mount-timeout=1ns"});
  s = Mount(ExampleAttributes(Jwt()), &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("the mount took longer than"));
  EXPECT_EQ(provider_->Stop(), 0);
  StartProvider();
  EXPECT_TRUE(Mount(ExampleAttributes(Jwt()), &r).ok()) << provider_->Log();
}

TEST_F(CsiProviderTest, MalformedObjectsYamlIsRefusedClearly) {
  StartProvider();
  json a = ExampleAttributes(Jwt());
  a["objects"] =
      "- objectName: openai-api-key\n  secretPath: [secret/data/lobstack/api-keys\n"
      "  secretKey: openai\n";
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("parameter \"objects\" is not valid YAML: line "));

  a["objects"] = "objectName: openai-api-key\nsecretPath: secret/data/lobstack/api-keys\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("must be a YAML list of objects"));

  a["objects"] = "- objectName: x\n  secretPath: p\n  filePermission: '0600'\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("object \"x\": filePermission must be"));

  v1alpha1::MountRequest bad;
  bad.set_attributes("{not json");
  bad.set_target_path("/t");
  bad.set_permission("420");
  grpc::ClientContext ctx;
  s = provider_->Stub()->Mount(&ctx, bad, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("not a JSON object of strings"));
  EXPECT_THAT(provider_->Log(), HasSubstr("mount refused: parameter \"objects\" is not valid"));
}

TEST_F(CsiProviderTest, KvVersion1WithAndWithoutKeyAndEncodings) {
  StartProvider();
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIB-kv1-test\n";
  extra_secrets_.push_back("MIIB-kv1-test");
  auto put = d_.Root("POST", "/v1/kv1/lobstack/tls",
                     {{"cert_b64", absl::Base64Escape(cert)},
                      {"key_hex", absl::BytesToHexString("kv1-hex-secret")},
                      {"note", "not*base64!"},
                      {"port", 8443}});
  ASSERT_EQ(put.status, 204) << put.body;
  extra_secrets_.push_back("kv1-hex-secret");
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/lobstack-api-csi",
                    {{"policy",
                      "path \"secret/data/lobstack/api-keys\" { capabilities = "
                      "[\"read\"] }\npath \"kv1/lobstack/*\" { capabilities = "
                      "[\"read\"] }\n"}})
                .status,
            204);
  json a = ExampleAttributes(Jwt());
  a["objects"] =
      "- {objectName: tls.crt, secretPath: kv1/lobstack/tls, secretKey: cert_b64, "
      "encoding: base64}\n"
      "- {objectName: tls.key, secretPath: /v1/kv1/lobstack/tls, secretKey: key_hex, "
      "encoding: HEX}\n"
      "- {objectName: port, secretPath: v1/kv1/lobstack/tls, secretKey: port}\n"
      "- {objectName: tls.json, secretPath: kv1/lobstack/tls}\n"
      "- {objectName: raw-b64, secretPath: kv1/lobstack/tls, secretKey: cert_b64, "
      "encoding: utf-8}\n";
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(a, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto files = Files(r);
  EXPECT_EQ(files["tls.crt"]->contents(), cert);
  EXPECT_EQ(files["tls.key"]->contents(), "kv1-hex-secret");
  EXPECT_EQ(files["port"]->contents(), "8443");  // not a string: JSON
  EXPECT_EQ(files["raw-b64"]->contents(), absl::Base64Escape(cert));
  json whole = json::parse(files["tls.json"]->contents());
  EXPECT_EQ(whole["data"]["port"], 8443);  // KV v1: data itself
  EXPECT_EQ(whole["data"]["key_hex"], absl::BytesToHexString("kv1-hex-secret"));

  // A value that does not decode: the error names the key and the encoding, not the value.
  a["objects"] =
      "- {objectName: bad, secretPath: kv1/lobstack/tls, secretKey: note, "
      "encoding: base64}\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(s.error_message(),
            "object \"bad\" (GET kv1/lobstack/tls): the value of key \"note\" is not valid "
            "base64 (encoding: base64)");
}

TEST_F(CsiProviderTest, PutWithSecretArgsEncryptsWithTransit) {
  StartProvider();
  ASSERT_EQ(d_.Root("PUT", "/v1/sys/policies/acl/lobstack-api-csi",
                    {{"policy",
                      "path \"transit/encrypt/lobstack\" { capabilities = "
                      "[\"update\"] }\n"}})
                .status,
            204);
  const std::string plaintext = "tenant-42-master-secret";
  extra_secrets_.push_back(plaintext);
  extra_secrets_.push_back(absl::Base64Escape(plaintext));
  json a = ExampleAttributes(Jwt());
  a["objects"] =
      "- objectName: ciphertext\n  secretPath: transit/encrypt/lobstack\n"
      "  method: PUT\n  secretKey: ciphertext\n  secretArgs:\n    plaintext: " +
      absl::Base64Escape(plaintext) +
      "\n- objectName: response.json\n  secretPath: transit/encrypt/lobstack\n"
      "  method: PUT\n  secretArgs:\n    plaintext: " +
      absl::Base64Escape(plaintext) + "\n";
  v1alpha1::MountResponse r;
  grpc::Status s = Mount(a, &r);
  ASSERT_TRUE(s.ok()) << s.error_message() << provider_->Log();
  auto files = Files(r);
  const std::string ciphertext = files["ciphertext"]->contents();
  EXPECT_EQ(ciphertext.rfind("vault:v1:", 0), 0u) << ciphertext;
  // The same request is sent once per mount: both objects come from one answer.
  EXPECT_EQ(json::parse(files["response.json"]->contents())["data"]["ciphertext"], ciphertext);
  auto dec = d_.Root("POST", "/v1/transit/decrypt/lobstack", {{"ciphertext", ciphertext}});
  ASSERT_EQ(dec.status, 200) << dec.body;
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(dec.Json()["data"]["plaintext"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, plaintext);

  // PUT without the capability: refused, naming the object.
  a["objects"] =
      "- objectName: other\n  secretPath: transit/encrypt/agent-data\n  method: PUT\n"
      "  secretArgs: {plaintext: " +
      absl::Base64Escape(plaintext) + "}\n";
  s = Mount(a, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("object \"other\" (PUT transit/encrypt/agent-data)"));
}

TEST_F(CsiProviderTest, ATokenRequestOnlyWhenTheDriverPassedNoToken) {
  std::ofstream(dir_ + "/kube-token") << kube_->Str("saBearer") << "\n";
  std::ofstream(dir_ + "/kube-ca.crt") << kube_->Str("caPem");
  jwts_.push_back(kube_->Str("saBearer"));
  StartProvider({"-kubernetes-token-requests=true", "-kubernetes-host=" + kube_->Str("url"),
                 "-kubernetes-ca-cert=" + dir_ + "/kube-ca.crt",
                 "-kubernetes-token-file=" + dir_ + "/kube-token"});
  auto token_requests = [&] {
    int n = 0;
    for (const json& req : kube_->Command("requests")) n += req.contains("tokenRequest");
    return n;
  };
  // The driver passed a token: no TokenRequest.
  v1alpha1::MountResponse r;
  ASSERT_TRUE(Mount(ExampleAttributes(Jwt()), &r).ok()) << provider_->Log();
  EXPECT_EQ(token_requests(), 0);

  // It passed none (no tokenRequests on the CSIDriver): the provider asks for one bound to the
  // pod, for the class's audience, as Vault's provider does. A restarted provider has no cached
  // Vault token, so it must log in.
  EXPECT_EQ(provider_->Stop(), 0);
  StartProvider({"-kubernetes-token-requests=true", "-kubernetes-host=" + kube_->Str("url"),
                 "-kubernetes-ca-cert=" + dir_ + "/kube-ca.crt",
                 "-kubernetes-token-file=" + dir_ + "/kube-token"});
  grpc::Status s = Mount(ExampleAttributes(""), &r);
  ASSERT_TRUE(s.ok()) << s.error_message() << provider_->Log();
  EXPECT_EQ(Files(r)["openai-api-key"]->contents(), kApiKeys.at("openai"));
  ASSERT_EQ(token_requests(), 1);
  json last;
  for (const json& req : kube_->Command("requests")) {
    if (req.contains("tokenRequest")) last = req;
  }
  EXPECT_EQ(last["url"],
            "/api/v1/namespaces/lobstack-control-plane/serviceaccounts/lobstack-api/token");
  EXPECT_EQ(last["headers"]["authorization"], "Bearer " + kube_->Str("saBearer"));
  EXPECT_EQ(last["tokenRequest"], json::parse(R"({"namespace":"lobstack-control-plane",
      "name":"lobstack-api","audiences":["vault"],"pod":{"name":"lobstack-api-0",
      "uid":"6a7b2c1e-0000-4000-8000-00000000c51a"},"expirationSeconds":900})"));

  // The Kubernetes API refusing is an error that says so (the provider's own bearer is not
  // allowed to create tokens).
  std::ofstream(dir_ + "/kube-token") << kube_->Str("forbiddenBearer") << "\n";
  jwts_.push_back(kube_->Str("forbiddenBearer"));
  json other = ExampleAttributes("");
  other["csi.storage.k8s.io/pod.uid"] = "6a7b2c1e-0000-4000-8000-00000000beef";  // another pod
  s = Mount(other, &r);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(),
              HasSubstr("requesting a token for service account lobstack-control-plane/"
                        "lobstack-api (pod lobstack-api-0) from the Kubernetes API: 403 "
                        "serviceaccounts \"lobstack-api\" is forbidden"));
}

TEST_F(CsiProviderTest, ARevokedCachedTokenIsReplacedByANewLogin) {
  StartProvider();
  const json attributes = ExampleAttributes(Jwt());
  v1alpha1::MountResponse r;
  ASSERT_TRUE(Mount(attributes, &r).ok());
  // Revoke every token the Kubernetes login gave (the provider's cached one).
  auto list = d_.Root("LIST", "/v1/auth/token/accessors");
  ASSERT_EQ(list.status, 200) << list.body;
  int revoked = 0;
  const json accessors = list.Json()["data"]["keys"];
  for (const json& accessor : accessors) {
    auto info = d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", accessor}});
    ASSERT_EQ(info.status, 200) << info.body;
    if (info.Json()["data"]["path"] != "auth/kubernetes/login") continue;
    ASSERT_EQ(d_.Root("POST", "/v1/auth/token/revoke-accessor", {{"accessor", accessor}}).status,
              204);
    ++revoked;
  }
  ASSERT_EQ(revoked, 1) << list.body;
  const size_t before = provider_->Log().size();
  v1alpha1::MountResponse again;
  grpc::Status s = Mount(attributes, &again, Versions(r));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Versions(again), Versions(r));
  EXPECT_THAT(provider_->Log().substr(before), HasSubstr("logged in, unchanged"));
}

TEST_F(CsiProviderTest, TheTokenCacheIsBounded) {
  StartProvider({"-cache-size=1"});
  // Two pods of the account alternate: with room for one token, each mount logs in again.
  json a = ExampleAttributes(Jwt());
  json b = a;
  b["csi.storage.k8s.io/pod.name"] = "lobstack-api-1";
  b["csi.storage.k8s.io/pod.uid"] = "6a7b2c1e-0000-4000-8000-00000000c51b";
  v1alpha1::MountResponse r;
  for (const json* attrs : {&a, &b, &a, &a}) ASSERT_TRUE(Mount(*attrs, &r).ok());
  const std::string log = provider_->Log();
  size_t logins = 0, cached = 0;
  for (size_t at = 0; (at = log.find(", logged in", at)) != std::string::npos; ++at) ++logins;
  for (size_t at = 0; (at = log.find(", cached token", at)) != std::string::npos; ++at) ++cached;
  EXPECT_EQ(logins, 3u) << log;
  EXPECT_EQ(cached, 1u) << log;
}

}  // namespace
}  // namespace strongroom::testing
