// The informational sys/ endpoints (engines/sys_info.cc, host_info.cc, openapi.cc) through the
// real pipeline, and the OpenAPI document checked against the router: every request the router
// lets through to a backend is described in the document, and every documented path is served.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "appliance/core/version_history.h"
#include "appliance/engines/host_info.h"
#include "tests/unit/engines/core_fixture.h"

namespace strongroom::testing {
namespace {

using core::Operation;
using core::json::array;
using core::json::object;

class SysInfoTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    ASSERT_TRUE(MountKv2("secret").status.ok());
    ASSERT_TRUE(Root(Operation::kUpdate, "sys/mounts/kv1", {{"type", "kv"}}).status.ok());
    ASSERT_TRUE(Root(Operation::kUpdate, "sys/auth/approle", {{"type", "approle"}}).status.ok());
    ASSERT_TRUE(Root(Operation::kUpdate, "sys/auth/userpass", {{"type", "userpass"}}).status.ok());
    ASSERT_TRUE(
        Root(Operation::kUpdate, "sys/auth/kubernetes", {{"type", "kubernetes"}}).status.ok());
  }
  object OpenApi(const std::string& token, object query = {}) {
    Reply r = Do(token, Operation::kRead, "sys/internal/specs/openapi", std::move(query));
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.response.kind, core::Response::Kind::kRaw);
    return r.response.data.value_or(object());
  }
};

TEST_F(SysInfoTest, HostInfoNeedsSudoAndHasVaultsSections) {
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/policies/acl/hi",
                   {{"policy", "path \"sys/host-info\" { capabilities = [\"read\"] }"}})
                  .status.ok());
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/policies/acl/hi-sudo",
                   {{"policy", "path \"sys/host-info\" { capabilities = [\"read\", \"sudo\"] }"}})
                  .status.ok());
  EXPECT_EQ(Do(TokenWith({"hi"}), Operation::kRead, "sys/host-info").code(), 403);
  Reply r = Do(TokenWith({"hi-sudo"}), Operation::kRead, "sys/host-info");
  ASSERT_TRUE(r.status.ok()) << r.status;
  const object& d = *r.response.data;
  for (const char* k : {"cpu", "cpu_times", "disk", "host", "memory", "timestamp"}) {
    EXPECT_TRUE(d.contains(k)) << k;
  }
  ASSERT_TRUE(d.at("cpu").is_array());
  EXPECT_FALSE(d.at("cpu").as_array().empty());
  EXPECT_TRUE(d.at("cpu").as_array()[0].as_object().contains("modelName"));
  EXPECT_GT(d.at("memory").as_object().at("total").to_number<uint64_t>(), 0u);
  EXPECT_FALSE(d.at("host").as_object().at("hostname").as_string().empty());
  EXPECT_FALSE(d.at("disk").as_array().empty());
  EXPECT_EQ(d.at("timestamp").as_string(), "2023-11-14T22:13:20Z");
}

TEST(HostInfoParseTest, ProcFiles) {
  auto cpus = engines::ParseCpuInfo(
      "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 78\n"
      "model name\t: Intel(R) Core(TM)\nstepping\t: 3\ncpu MHz\t\t: 2400.000\n"
      "cache size\t: 4096 KB\nphysical id\t: 0\ncore id\t\t: 1\ncpu cores\t: 2\n"
      "flags\t\t: fpu vme de\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n\n");
  ASSERT_EQ(cpus.size(), 2u);
  const object& c = cpus[0].as_object();
  EXPECT_EQ(c.at("cpu").as_int64(), 0);
  EXPECT_EQ(c.at("vendorId").as_string(), "GenuineIntel");
  EXPECT_EQ(c.at("family").as_string(), "6");
  EXPECT_EQ(c.at("model").as_string(), "78");
  EXPECT_EQ(c.at("stepping").as_int64(), 3);
  EXPECT_EQ(c.at("cacheSize").as_int64(), 4096);
  EXPECT_EQ(c.at("cores").as_int64(), 2);
  EXPECT_DOUBLE_EQ(c.at("mhz").as_double(), 2400.0);
  EXPECT_EQ(core::Serialize(c.at("flags")), R"(["fpu","vme","de"])");

  auto times = engines::ParseCpuTimes(
      "cpu  100 0 200 300 0 0 0 0 0 0\ncpu0 50 1 100 150 2 3 4 5 6 7\nintr 1 2\n", 100);
  ASSERT_EQ(times.size(), 1u);  // per CPU; the total line is not one
  const object& t = times[0].as_object();
  EXPECT_EQ(t.at("cpu").as_string(), "cpu0");
  EXPECT_DOUBLE_EQ(t.at("user").as_double(), 0.5);
  EXPECT_DOUBLE_EQ(t.at("system").as_double(), 1.0);
  EXPECT_DOUBLE_EQ(t.at("guestNice").as_double(), 0.07);

  object m = engines::ParseMemInfo(
      "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\n"
      "Cached: 200 kB\nSReclaimable: 50 kB\nCommitLimit: 7 kB\nHugePages_Total: 3\n");
  EXPECT_EQ(m.at("total").as_uint64(), 1024000u);
  EXPECT_EQ(m.at("available").as_uint64(), 614400u);
  EXPECT_EQ(m.at("cached").as_uint64(), 256000u);
  EXPECT_EQ(m.at("used").as_uint64(), 1024000u - 102400u - 51200u - 256000u);
  EXPECT_EQ(m.at("commitLimit").as_uint64(), 7168u);
  EXPECT_EQ(m.at("commitlimit").as_uint64(), 7168u);  // gopsutil v2's name, kept by Vault
  EXPECT_EQ(m.at("hugePagesTotal").as_uint64(), 3u);  // a count, not kB

  EXPECT_EQ(engines::UnescapeMountField("/mnt/a\\040b"), "/mnt/a b");
  EXPECT_EQ(engines::UnescapeMountField("/x\\"), "/x\\");
  EXPECT_EQ(engines::ReadBoundedFile("/proc/self/status", 16).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Under the systemd unit (ProcSubset=pid) /proc shows processes only: what sysinfo(2) and
// sysconf tell takes the place of /proc/meminfo and /proc/cpuinfo, and the rest is named in the
// warnings.
TEST(HostInfoParseTest, WithoutProcFiles) {
  char tmpl[] = "/tmp/sr-hostinfo-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  engines::HostInfoSources src;
  src.proc = tmpl;
  src.etc = tmpl;
  std::vector<std::string> warnings;
  object o = engines::CollectHostInfo(src, absl::FromUnixSeconds(1700000000), &warnings);
  rmdir(tmpl);
  EXPECT_GT(o.at("memory").as_object().at("total").as_uint64(), 0u);
  EXPECT_FALSE(o.at("cpu").as_array().empty());
  EXPECT_TRUE(o.at("cpu_times").is_null());
  EXPECT_GT(o.at("host").as_object().at("bootTime").as_uint64(), 0u);
  EXPECT_GT(o.at("host").as_object().at("procs").as_uint64(), 0u);
  const std::string all = absl::StrJoin(warnings, "\n");
  for (const char* what : {"cpu:", "cpu_times:", "memory:", "disk:"}) {
    EXPECT_TRUE(absl::StrContains(all, what)) << what << " in " << all;
  }
}

TEST_F(SysInfoTest, Counters) {
  (void)TokenWith({"default"});
  (void)TokenWith({"default"});
  Reply tokens = Root(Operation::kRead, "sys/internal/counters/tokens");
  ASSERT_TRUE(tokens.status.ok()) << tokens.status;
  // The root token and the two children.
  EXPECT_EQ(core::Serialize(*tokens.response.data),
            R"({"counters":{"service_tokens":{"total":3}}})");
  Reply entities = Root(Operation::kRead, "sys/internal/counters/entities");
  EXPECT_EQ(core::Serialize(*entities.response.data), R"({"counters":{"entities":{"total":0}}})");

  // No activity log: Vault's answer for a period without data, after Vault's checks.
  EXPECT_EQ(Root(Operation::kRead, "sys/internal/counters/activity").code(), 204);
  EXPECT_EQ(Root(Operation::kRead, "sys/internal/counters/activity/monthly").code(), 204);
  Reply backwards =
      Root(Operation::kRead, "sys/internal/counters/activity",
           {{"start_time", "2024-02-01T00:00:00Z"}, {"end_time", "2024-01-01T00:00:00Z"}});
  EXPECT_EQ(backwards.code(), 400);
  EXPECT_EQ(backwards.status.message(), "start_time is later than end_time");
  EXPECT_EQ(Root(Operation::kRead, "sys/internal/counters/activity", {{"start_time", "yesterday"}})
                .code(),
            400);
  Reply config = Root(Operation::kRead, "sys/internal/counters/config");
  ASSERT_TRUE(config.status.ok());
  EXPECT_EQ(config.response.data->at("enabled").as_string(), "disable");
  EXPECT_EQ(
      Root(Operation::kUpdate, "sys/internal/counters/config", {{"enabled", "enable"}}).code(),
      400);
  EXPECT_EQ(
      Root(Operation::kUpdate, "sys/internal/counters/config", {{"enabled", "disable"}}).code(),
      204);
  EXPECT_EQ(Root(Operation::kRead, "sys/internal/counters/requests").code(), 404);
}

TEST_F(SysInfoTest, ConfigStateWithoutTheBrokersConfiguration) {
  Reply r = Root(Operation::kRead, "sys/config/state/sanitized");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.response.data->at("storage").as_object().at("type").as_string(), "rocksdb");
}

TEST_F(SysInfoTest, VersionHistoryIsRecordedOncePerVersion) {
  Reply r = Root(Operation::kList, "sys/version-history");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(core::Serialize(r.response.data->at("keys")), R"(["1.19.0+strongroom"])");
  const object& first =
      r.response.data->at("key_info").as_object().at("1.19.0+strongroom").as_object();
  EXPECT_EQ(first.at("timestamp_installed").as_string(), "2023-11-14T22:13:20Z");
  EXPECT_TRUE(first.at("previous_version").is_null());
  EXPECT_TRUE(first.at("build_date").is_null());
  EXPECT_EQ(Root(Operation::kRead, "sys/version-history").code(), 405);

  // Unsealed again later, and then by a newer version over the same storage.
  ASSERT_TRUE(core_->SealNow("test").ok());
  now_ += absl::Hours(1);
  core_->Start();
  ASSERT_FALSE(core_->sealed());
  core_.reset();
  core::CoreOptions options;
  options.engines = engines::EngineTable();
  options.version = "1.20.0+strongroom";
  options.build_date = "2025-01-02T03:04:05Z";
  options.clock = [this] { return now_ + absl::Hours(24); };
  core_ = std::make_unique<core::Core>(std::move(options), &physical_,
                                       std::make_unique<PassThroughSeal>());
  core_->Start();
  ASSERT_FALSE(core_->sealed());
  r = Root(Operation::kList, "sys/version-history");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(core::Serialize(r.response.data->at("keys")),
            R"(["1.19.0+strongroom","1.20.0+strongroom"])");
  const object& info = r.response.data->at("key_info").as_object();
  EXPECT_EQ(info.at("1.19.0+strongroom").as_object().at("timestamp_installed").as_string(),
            "2023-11-14T22:13:20Z");
  EXPECT_EQ(info.at("1.20.0+strongroom").as_object().at("previous_version").as_string(),
            "1.19.0+strongroom");
  EXPECT_EQ(info.at("1.20.0+strongroom").as_object().at("build_date").as_string(),
            "2025-01-02T03:04:05Z");
}

TEST_F(SysInfoTest, OpenApiDocumentDescribesEveryMountedRoute) {
  object doc = OpenApi(root_);
  EXPECT_EQ(doc.at("openapi").as_string(), "3.0.2");
  EXPECT_EQ(doc.at("info").as_object().at("version").as_string(), "1.19.0+strongroom");
  EXPECT_EQ(doc.at("info").as_object().at("title").as_string(), "HashiCorp Vault API");
  const object& paths = doc.at("paths").as_object();
  size_t routes = 0;
  std::set<std::string> ids;
  for (const auto& m : core_->MountBackends()) {
    ASSERT_FALSE(m.backend->Routes().empty()) << m.entry.type << " has no route table";
    for (const auto& r : m.backend->Routes()) {
      ++routes;
      std::string key = absl::StrCat("/", m.entry.path, core::RouteOpenApiPath(r.pattern));
      if (!r.pattern.empty()) key = std::string(absl::StripSuffix(key, "/"));
      ASSERT_TRUE(paths.contains(key)) << key;
      const object& item = paths.at(key).as_object();
      EXPECT_EQ(item.contains("get"), (r.ops & (core::kRouteRead | core::kRouteList)) != 0) << key;
      EXPECT_EQ(item.contains("post"), (r.ops & core::kRouteWrite) != 0) << key;
      EXPECT_EQ(item.contains("delete"), (r.ops & core::kRouteDelete) != 0) << key;
      EXPECT_EQ(item.contains("patch"), (r.ops & core::kRoutePatch) != 0) << key;
      for (const char* verb : {"get", "post", "delete", "patch"}) {
        if (!item.contains(verb)) continue;
        const std::string id(item.at(verb).as_object().at("operationId").as_string());
        EXPECT_TRUE(ids.insert(id).second) << "duplicate operationId " << id;
      }
    }
  }
  EXPECT_EQ(paths.size(), routes);
  EXPECT_GT(routes, 100u);
  // Vault's extensions and LIST form.
  EXPECT_TRUE(paths.at("/sys/host-info").as_object().at("x-vault-sudo").as_bool());
  EXPECT_TRUE(
      paths.at("/sys/internal/specs/openapi").as_object().at("x-vault-unauthenticated").as_bool());
  EXPECT_TRUE(paths.at("/auth/userpass/login/{username}")
                  .as_object()
                  .at("x-vault-unauthenticated")
                  .as_bool());
  const object& list = paths.at("/auth/userpass/users").as_object().at("get").as_object();
  EXPECT_EQ(core::Serialize(list.at("parameters").as_array()[0].as_object().at("schema")),
            R"({"type":"string","enum":["true"]})");
  EXPECT_EQ(core::Serialize(paths.at("/secret/data/{path}").as_object().at("parameters")),
            R"([{"name":"path","in":"path","schema":{"type":"string"},"required":true}])");
  // Request bodies are component schemas.
  const object& post =
      paths.at("/auth/userpass/users/{username}").as_object().at("post").as_object();
  const std::string ref(post.at("requestBody")
                            .as_object()
                            .at("content")
                            .as_object()
                            .at("application/json")
                            .as_object()
                            .at("schema")
                            .as_object()
                            .at("$ref")
                            .as_string());
  ASSERT_TRUE(absl::StartsWith(ref, "#/components/schemas/"));
  EXPECT_TRUE(doc.at("components").as_object().at("schemas").as_object().contains(ref.substr(21)));
}

TEST_F(SysInfoTest, OpenApiShowsOnlyWhatTheCallerMaySee) {
  object anonymous = OpenApi("");
  EXPECT_TRUE(anonymous.at("paths").as_object().empty());
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/auth/userpass/tune", {{"listing_visibility", "unauth"}})
                  .status.ok());
  anonymous = OpenApi("");
  for (const auto& [k, v] : anonymous.at("paths").as_object()) {
    EXPECT_TRUE(std::string(k).starts_with("/auth/userpass/")) << std::string(k);
  }
  EXPECT_FALSE(anonymous.at("paths").as_object().empty());
  ASSERT_TRUE(Root(Operation::kUpdate, "sys/policies/acl/kv",
                   {{"policy", "path \"secret/data/app\" { capabilities = [\"read\"] }"}})
                  .status.ok());
  object kv = OpenApi(TokenWith({"kv"}));
  EXPECT_TRUE(kv.at("paths").as_object().contains("/secret/data/{path}"));
  // (sys/ is there too: the default policy grants paths under it, as in Vault.)
  EXPECT_FALSE(kv.at("paths").as_object().contains("/auth/approle/login"));
  EXPECT_EQ(Do("hvs.not-a-token", Operation::kRead, "sys/internal/specs/openapi").code(), 403);

  object generic = OpenApi(root_, {{"generic_mount_paths", true}});
  const object& gp = generic.at("paths").as_object();
  EXPECT_TRUE(gp.contains("/auth/{userpass_mount_path}/login/{username}"));
  EXPECT_TRUE(gp.contains("/{kv_mount_path}/data/{path}"));
  EXPECT_TRUE(gp.contains("/sys/mounts"));
  EXPECT_TRUE(gp.contains("/auth/token/create"));
}

// A documented path template as a matcher, split once. `rest` lets a parameter take several
// segments (a "{path*}" is documented as "{path}", as Vault documents its ".+" captures).
struct DocPath {
  std::vector<std::string> segs;
  std::vector<bool> param;
  const object* item;
};

std::vector<DocPath> SplitDocument(const object& paths) {
  std::vector<DocPath> out;
  for (const auto& [k, v] : paths) {
    DocPath d{absl::StrSplit(std::string(k).substr(1), '/'), {}, &v.as_object()};
    for (const std::string& s : d.segs) d.param.push_back(absl::StartsWith(s, "{"));
    out.push_back(std::move(d));
  }
  return out;
}

bool DocMatches(const DocPath& tmpl, const std::vector<std::string>& path, bool rest) {
  size_t tn = tmpl.segs.size(), pn = path.size();
  if (tn > 0 && tmpl.segs.back().empty() && pn > 0 && path.back().empty()) {  // "/secret/"
    --tn;
    --pn;
  }
  // Almost every template starts with a fixed segment (its mount): most fail here.
  if (tn > 0 && pn > 0 && !tmpl.param[0] && tmpl.segs[0] != path[0]) return false;
  // Dynamic programming over (template index, path index): no recursion.
  std::vector<std::vector<char>> ok(tn + 1, std::vector<char>(pn + 1, 0));
  ok[0][0] = 1;
  for (size_t i = 0; i < tn; ++i) {
    for (size_t j = 0; j < pn; ++j) {
      if (!ok[i][j] || path[j].empty()) continue;
      if (!tmpl.param[i]) {
        if (tmpl.segs[i] == path[j]) ok[i + 1][j + 1] = 1;
        continue;
      }
      for (size_t k = j + 1; k <= pn && (rest || k == j + 1); ++k) {
        if (path[k - 1].empty()) break;
        ok[i + 1][k] = 1;
      }
    }
  }
  return ok[tn][pn];
}

const char* VerbOf(Operation op) {
  switch (op) {
    case Operation::kRead:
    case Operation::kList:
      return "get";
    case Operation::kUpdate:
      return "post";
    case Operation::kDelete:
      return "delete";
    default:
      return "patch";
  }
}

// Whether the document has `op` on a path matching `full`. LIST is a GET whose "list" query
// parameter is required (list only) or optional (read and list); READ a GET without a required
// one.
bool Documented(const std::vector<DocPath>& doc, const std::vector<std::string>& full, Operation op,
                bool rest) {
  for (const DocPath& d : doc) {
    if (!DocMatches(d, full, rest)) continue;
    const object& item = *d.item;
    if (!item.contains(VerbOf(op))) continue;
    if (op != Operation::kRead && op != Operation::kList) return true;
    std::optional<bool> list_required;
    if (const auto* params = item.at("get").as_object().if_contains("parameters")) {
      for (const auto& prm : params->as_array()) {
        const object& po = prm.as_object();
        if (po.at("name").as_string() == "list") {
          list_required = po.contains("required") && po.at("required").as_bool();
        }
      }
    }
    if (op == Operation::kList && list_required.has_value()) return true;
    if (op == Operation::kRead && !list_required.value_or(false)) return true;
  }
  return false;
}

// The router's own decision (the route table the core checks before a backend runs) against the
// document, over generated paths: accepted => documented, and documented (one segment per
// parameter) => accepted.
TEST_F(SysInfoTest, RouterAndDocumentAgree) {
  const object doc = OpenApi(root_);
  const object& paths = doc.at("paths").as_object();
  // Candidate paths: each documented path with its parameters filled in, and random paths made
  // from every segment the document names.
  std::vector<std::string> candidates;
  std::vector<std::string> words = {"x", "y", "tune", "password", "data"};
  for (const auto& [k, v] : paths) {
    std::vector<std::string> segs = absl::StrSplit(std::string(k).substr(1), '/');
    for (auto& s : segs) {
      if (absl::StartsWith(s, "{")) {
        s = "x";
      } else if (!s.empty()) {
        words.push_back(s);
      }
    }
    const std::string filled = absl::StrJoin(segs, "/");
    candidates.push_back(filled);
    candidates.push_back(filled + "/extra");
    candidates.push_back(filled + "/x/y");
    if (segs.size() > 1) {
      candidates.push_back(absl::StrJoin(segs.begin(), segs.end() - 1, "/"));
    }
  }
  std::mt19937 rng(20);
  const std::vector<std::string> mounts = {"sys/",           "secret/",         "kv1/",
                                           "auth/token/",    "identity/",       "auth/approle/",
                                           "auth/userpass/", "auth/kubernetes/"};
  for (int i = 0; i < 20000; ++i) {
    std::string path = mounts[rng() % mounts.size()];
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int j = 0; j < n; ++j) {
      if (j > 0) path += "/";
      path += words[rng() % words.size()];
    }
    candidates.push_back(path);
  }
  const std::vector<DocPath> templates = SplitDocument(paths);
  const auto all_mounts = core_->MountBackends();
  size_t accepted = 0;
  for (const std::string& full : candidates) {
    const core::Core::MountBackend* owner = nullptr;
    for (const auto& m : all_mounts) {
      if (absl::StartsWith(full, m.entry.path) &&
          (owner == nullptr || m.entry.path.size() > owner->entry.path.size())) {
        owner = &m;
      }
    }
    if (owner == nullptr) continue;
    const std::string rel = full.substr(owner->entry.path.size());
    const std::vector<std::string> segs = absl::StrSplit(full, '/');
    for (Operation op : {Operation::kRead, Operation::kList, Operation::kUpdate, Operation::kDelete,
                         Operation::kPatch}) {
      const bool router = core::CheckRoute(owner->backend->Routes(), rel, op).ok();
      if (router) {
        ++accepted;
        EXPECT_TRUE(Documented(templates, segs, op, /*rest=*/true))
            << "accepted but not documented: " << VerbOf(op) << " " << full;
      }
      if (Documented(templates, segs, op, /*rest=*/false)) {
        EXPECT_TRUE(router) << "documented but refused: " << VerbOf(op) << " " << full;
      }
    }
  }
  EXPECT_GT(accepted, 500u);
}

}  // namespace
}  // namespace strongroom::testing
