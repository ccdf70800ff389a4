// Integration tests of the KV version 2 secrets engine against the real daemon: every request
// goes over HTTP to strongroomd and its workers. Vault API sections checked: §3.1–§3.4 of
// vault-api.md (endpoint table, read, write/patch, metadata) and the §1.4/§1.5 envelopes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

constexpr char kCasMismatch[] = "check-and-set parameter did not match the current version";
constexpr char kCasRequired[] = "check-and-set parameter required for this call";

class KvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204)
        << d_.Log();
  }

  HttpResponse Put(const std::string& key, const json& data,
                   std::optional<json> cas = std::nullopt) {
    json body = {{"data", data}};
    if (cas) body["options"] = {{"cas", *cas}};
    return d_.Root("POST", "/v1/secret/data/" + key, body);
  }
  HttpResponse Get(const std::string& path) { return d_.Root("GET", "/v1/secret/" + path); }
  HttpResponse Patch(const std::string& path, const json& body) {
    return d_.Call(
        "PATCH", "/v1/secret/" + path, body.dump(),
        {{"X-Vault-Token", d_.root_token()}, {"Content-Type", "application/merge-patch+json"}});
  }
  json Meta(const std::string& key) { return Get("metadata/" + key).Json()["data"]; }
  static std::string FirstError(const HttpResponse& r) {
    json j = r.Json();
    return j.contains("errors") && !j["errors"].empty() ? j["errors"][0].get<std::string>() : "";
  }

  Daemon d_;
};

TEST_F(KvTest, WriteAndReadVersionsWithVaultFields) {
  auto w1 = Put("app", {{"k", "v1"}});
  ASSERT_EQ(w1.status, 200) << w1.body;
  json m1 = w1.Json()["data"];
  EXPECT_EQ(m1["version"], 1);
  EXPECT_EQ(m1["deletion_time"], "");
  EXPECT_EQ(m1["destroyed"], false);
  EXPECT_TRUE(m1["custom_metadata"].is_null());
  EXPECT_THAT(m1["created_time"].get<std::string>(), ::testing::EndsWith("Z"));
  ASSERT_EQ(Put("app", {{"k", "v2"}, {"n", {{"deep", 1}}}}).status, 200);

  auto cur = Get("data/app");
  ASSERT_EQ(cur.status, 200);
  json cj = cur.Json();
  EXPECT_EQ(cj["data"]["data"], json({{"k", "v2"}, {"n", {{"deep", 1}}}}));
  EXPECT_EQ(cj["data"]["metadata"]["version"], 2);
  EXPECT_EQ(cj["lease_duration"], 0);
  EXPECT_EQ(cj["lease_id"], "");
  EXPECT_EQ(cj["renewable"], false);
  EXPECT_TRUE(cj["warnings"].is_null());
  EXPECT_EQ(Get("data/app?version=1").Json()["data"]["data"]["k"], "v1");
  EXPECT_EQ(Get("data/app?version=0").Json()["data"]["metadata"]["version"], 2);
  EXPECT_EQ(Get("data/app?version=-1").Json()["data"]["metadata"]["version"],
            2);  // only > 0 selects

  // Versions that do not exist and missing keys: 404 with an empty error list, no data.
  for (const char* p : {"data/app?version=3", "data/nope", "data/nope?version=2"}) {
    auto r = Get(p);
    EXPECT_EQ(r.status, 404) << p;
    EXPECT_EQ(r.Json(), json::parse(R"({"errors":[]})")) << p;
  }
  auto bad = Get("data/app?version=abc");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(FirstError(bad), StartsWith("Field validation failed"));
  auto nodata = d_.Root("POST", "/v1/secret/data/app", {{"options", {{"cas", 2}}}});
  EXPECT_EQ(nodata.status, 400);
  EXPECT_EQ(FirstError(nodata), "no data provided");
}

TEST_F(KvTest, CheckAndSetRules) {
  // cas=0: the key must not exist yet.
  ASSERT_EQ(Put("c", {{"a", 1}}, 0).status, 200);
  auto again = Put("c", {{"a", 2}}, 0);
  EXPECT_EQ(again.status, 400);
  EXPECT_EQ(again.Json(), json({{"errors", {kCasMismatch}}}));
  EXPECT_EQ(FirstError(Put("c", {{"a", 2}}, 5)), kCasMismatch);
  // Weak decoding: a string or a float is accepted.
  EXPECT_EQ(Put("c", {{"a", 2}}, "1").Json()["data"]["version"], 2);
  EXPECT_EQ(Put("c", {{"a", 3}}, 2.0).Json()["data"]["version"], 3);

  // Mount-level cas_required.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"cas_required", true}}).status, 204);
  auto req = Put("c", {{"a", 4}});
  EXPECT_EQ(req.status, 400);
  EXPECT_EQ(FirstError(req), kCasRequired);
  EXPECT_EQ(Put("c", {{"a", 4}}, 3).status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"cas_required", false}}).status, 204);

  // Key-level cas_required.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/k", {{"cas_required", true}}).status, 204);
  EXPECT_EQ(FirstError(Put("k", {{"a", 1}})), kCasRequired);
  EXPECT_EQ(Put("k", {{"a", 1}}, 0).status, 200);
  EXPECT_EQ(Put("c", {{"a", 5}}).status, 200);  // other keys unaffected
}

TEST_F(KvTest, SoftDeletedKeyKeepsItsVersionNumberForCas) {
  ASSERT_EQ(Put("s", {{"a", 1}}).status, 200);
  ASSERT_EQ(Put("s", {{"a", 2}}).status, 200);
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/data/s").status, 204);
  EXPECT_EQ(FirstError(Put("s", {{"a", 3}}, 0)), kCasMismatch);
  auto ok = Put("s", {{"a", 3}}, 2);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Json()["data"]["version"], 3);
}

TEST_F(KvTest, PatchMergesIntoTheLatestVersion) {
  ASSERT_EQ(Put("p", {{"keep", "x"}, {"drop", "y"}, {"obj", {{"a", 1}, {"b", 2}}}}).status, 200);
  auto r =
      Patch("data/p",
            {{"data", {{"drop", nullptr}, {"obj", {{"b", nullptr}, {"c", 3}}}, {"new", true}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["data"]["version"], 2);
  EXPECT_EQ(Get("data/p").Json()["data"]["data"],
            json({{"keep", "x"}, {"obj", {{"a", 1}, {"c", 3}}}, {"new", true}}));
  EXPECT_EQ(Get("data/p?version=1").Json()["data"]["data"]["drop"], "y");

  // CAS applies to patch too.
  EXPECT_EQ(FirstError(Patch("data/p", {{"data", {{"z", 1}}}, {"options", {{"cas", 1}}}})),
            kCasMismatch);
  EXPECT_EQ(Patch("data/p", {{"data", {{"z", 1}}}, {"options", {{"cas", 2}}}}).status, 200);
  EXPECT_EQ(FirstError(Patch("data/p", {{"options", {{"cas", 3}}}})), "no data provided");

  // Missing key, deleted latest, destroyed latest: 404.
  // Vault answers a patch of a missing key with a bare 404: no body at all.
  auto missing = Patch("data/none", {{"data", {{"a", 1}}}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "");
  ASSERT_EQ(d_.Root("DELETE", "/v1/secret/data/p").status, 204);
  auto deleted = Patch("data/p", {{"data", {{"a", 1}}}});
  EXPECT_EQ(deleted.status, 404);
  EXPECT_NE(deleted.Json()["data"]["deletion_time"], "");
  ASSERT_EQ(Put("p", {{"a", 1}}).status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/destroy/p", json::parse(R"({"versions":[4]})")).status,
            204);
  auto destroyed = Patch("data/p", {{"data", {{"a", 1}}}});
  EXPECT_EQ(destroyed.status, 404);
  EXPECT_EQ(destroyed.Json()["data"]["destroyed"], true);

  // The worker insists on the merge-patch content type.
  auto wrong = d_.Call("PATCH", "/v1/secret/data/p", R"({"data":{"a":1}})",
                       {{"X-Vault-Token", d_.root_token()}, {"Content-Type", "application/json"}});
  EXPECT_EQ(wrong.status, 415);
}

TEST_F(KvTest, SoftDeleteUndeleteAndDestroyVersions) {
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(Put("d", {{"i", i}}).status, 200);
  EXPECT_EQ(d_.Root("POST", "/v1/secret/delete/d", json::parse(R"({"versions":[1,2]})")).status,
            204);
  auto r1 = Get("data/d?version=1");
  EXPECT_EQ(r1.status, 404);
  json j1 = r1.Json();
  EXPECT_TRUE(j1["data"]["data"].is_null());
  EXPECT_EQ(j1["data"]["metadata"]["version"], 1);
  EXPECT_NE(j1["data"]["metadata"]["deletion_time"], "");
  EXPECT_EQ(j1["data"]["metadata"]["destroyed"], false);
  EXPECT_TRUE(j1.contains("request_id"));  // a full envelope, not an error body
  EXPECT_EQ(Get("data/d").status, 200);    // version 3 untouched

  // Undelete accepts Vault's comma-separated form too.
  EXPECT_EQ(d_.Root("POST", "/v1/secret/undelete/d", {{"versions", "1"}}).status, 204);
  auto u = Get("data/d?version=1");
  EXPECT_EQ(u.status, 200);
  EXPECT_EQ(u.Json()["data"]["metadata"]["deletion_time"], "");
  EXPECT_EQ(u.Json()["data"]["data"]["i"], 1);
  EXPECT_EQ(Get("data/d?version=2").status, 404);

  EXPECT_EQ(d_.Root("PUT", "/v1/secret/destroy/d", json::parse(R"({"versions":[2,99]})")).status,
            204);
  auto dj = Get("data/d?version=2");
  EXPECT_EQ(dj.status, 404);
  EXPECT_TRUE(dj.Json()["data"]["data"].is_null());
  EXPECT_EQ(dj.Json()["data"]["metadata"]["destroyed"], true);
  // Undelete cannot bring back a destroyed version.
  EXPECT_EQ(d_.Root("POST", "/v1/secret/undelete/d", json::parse(R"({"versions":[2]})")).status,
            204);
  EXPECT_EQ(Get("data/d?version=2").status, 404);
  json meta = Meta("d");
  EXPECT_EQ(meta["versions"]["2"]["destroyed"], true);
  EXPECT_EQ(meta["versions"]["1"]["destroyed"], false);

  // DELETE data/ soft-deletes only the latest version.
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/data/d").status, 204);
  EXPECT_EQ(Get("data/d").status, 404);
  EXPECT_EQ(Get("data/d?version=1").status, 200);
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/data/d").status, 204);  // idempotent
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/data/never").status, 204);

  auto e1 = d_.Root("POST", "/v1/secret/delete/d", json::object());
  EXPECT_EQ(e1.status, 400);
  EXPECT_EQ(FirstError(e1), "No version number provided");
  EXPECT_EQ(FirstError(d_.Root("POST", "/v1/secret/undelete/d", json::object())),
            "No version number provided");
  auto e3 = d_.Root("POST", "/v1/secret/destroy/d", json::object());
  EXPECT_EQ(e3.status, 400);
  EXPECT_EQ(FirstError(e3), "no version number provided");
}

TEST_F(KvTest, MetadataWriteReadPatchAndValidation) {
  // POST creates the entry without creating a version.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/m",
                    {{"max_versions", 5},
                     {"delete_version_after", "3h25m19s"},
                     {"custom_metadata", {{"owner", "jdoe"}, {"team", "ops"}}}})
                .status,
            204);
  json m = Meta("m");
  EXPECT_EQ(m["current_version"], 0);
  EXPECT_EQ(m["oldest_version"], 0);
  EXPECT_EQ(m["max_versions"], 5);
  EXPECT_EQ(m["cas_required"], false);
  EXPECT_EQ(m["delete_version_after"], "3h25m19s");
  EXPECT_EQ(m["custom_metadata"], json({{"owner", "jdoe"}, {"team", "ops"}}));
  EXPECT_EQ(m["versions"], json::object());
  EXPECT_EQ(Get("data/m").status, 404);

  // custom_metadata shows up in data reads and write answers.
  auto w = Put("m", {{"a", 1}});
  EXPECT_EQ(w.Json()["data"]["custom_metadata"]["owner"], "jdoe");
  EXPECT_EQ(Get("data/m").Json()["data"]["metadata"]["custom_metadata"]["team"], "ops");

  // PATCH merges; null removes a custom_metadata key; other settings stay.
  ASSERT_EQ(Patch("metadata/m", {{"custom_metadata", {{"team", nullptr}, {"env", "prod"}}},
                                 {"cas_required", true}})
                .status,
            204);
  m = Meta("m");
  EXPECT_EQ(m["custom_metadata"], json({{"owner", "jdoe"}, {"env", "prod"}}));
  EXPECT_EQ(m["cas_required"], true);
  EXPECT_EQ(m["max_versions"], 5);
  EXPECT_EQ(m["current_version"], 1);
  auto absent = Patch("metadata/absent", {{"max_versions", 1}});
  EXPECT_EQ(absent.status, 404);
  EXPECT_EQ(absent.body, "");
  // POST replaces custom_metadata wholesale; values are weakly turned into strings; metadata
  // writes do not move updated_time (only data writes do).
  const std::string updated = m["updated_time"];
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/m",
                    {{"custom_metadata", {{"only", "me"}, {"n", 5}, {"b", true}}}})
                .status,
            204);
  m = Meta("m");
  EXPECT_EQ(m["custom_metadata"], json({{"only", "me"}, {"n", "5"}, {"b", "1"}}));
  EXPECT_EQ(m["updated_time"], updated);
  // An empty map reads back as null.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/m", {{"custom_metadata", json::object()}}).status,
            204);
  EXPECT_TRUE(Meta("m")["custom_metadata"].is_null());
  // A POST without any setting is a no-op that creates nothing.
  EXPECT_EQ(d_.Root("POST", "/v1/secret/metadata/nothing", {{"unrelated", 1}}).status, 204);
  EXPECT_EQ(Get("metadata/nothing").status, 404);
  // cas_required=false under a mount that requires CAS: stored, with Vault's warning.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"cas_required", true}}).status, 204);
  auto warn = d_.Root("POST", "/v1/secret/metadata/m", {{"cas_required", false}});
  EXPECT_EQ(warn.status, 200);
  EXPECT_EQ(warn.Json()["warnings"], json({"\"cas_required\" set to false, but is mandated by "
                                           "backend config. This value will be ignored."}));
  EXPECT_TRUE(warn.Json()["data"].is_null());
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"cas_required", false}}).status, 204);

  json many = json::object();
  for (int i = 0; i < 65; ++i) many["k" + std::to_string(i)] = "v";
  auto too_many = d_.Root("POST", "/v1/secret/metadata/m", {{"custom_metadata", many}});
  EXPECT_EQ(too_many.status, 400);
  EXPECT_THAT(
      FirstError(too_many),
      HasSubstr(
          "custom_metadata validation failed: payload must contain at most 64 keys, provided 65"));
  auto long_key = d_.Root("POST", "/v1/secret/metadata/m",
                          {{"custom_metadata", {{std::string(129, 'k'), "v"}}}});
  EXPECT_EQ(long_key.status, 400);
  EXPECT_THAT(FirstError(long_key), HasSubstr("custom_metadata validation failed: length of key"));
  EXPECT_THAT(FirstError(long_key), HasSubstr("is 129 but must be 0 < len(key) <= 128"));
  auto empty_val = d_.Root("POST", "/v1/secret/metadata/m", {{"custom_metadata", {{"k", ""}}}});
  EXPECT_EQ(empty_val.status, 400);
  EXPECT_THAT(FirstError(empty_val),
              HasSubstr("custom_metadata validation failed: length of value for key \"k\" is 0 but "
                        "must be 0 < len(value) <= 512"));
  auto ctl = d_.Root("POST", "/v1/secret/metadata/m", {{"custom_metadata", {{"a\tb", "v"}}}});
  EXPECT_EQ(ctl.status, 400);
  EXPECT_THAT(FirstError(ctl), HasSubstr("custom_metadata validation failed: key \"a\\tb\" (a\tb) "
                                         "contains unprintable characters"));
  // Validation comes first: a bad map is a 400 even on PATCH of a missing key.
  EXPECT_EQ(Patch("metadata/absent", {{"custom_metadata", {{"k", ""}}}}).status, 400);
  auto long_val = d_.Root("POST", "/v1/secret/metadata/m",
                          {{"custom_metadata", {{"k", std::string(513, 'v')}}}});
  EXPECT_EQ(long_val.status, 400);
  EXPECT_EQ(d_.Root("POST", "/v1/secret/metadata/m",
                    {{"custom_metadata", {{"k", std::string(512, 'v')}}}})
                .status,
            204);

  // Metadata DELETE removes every version and the entry.
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/metadata/m").status, 204);
  EXPECT_EQ(Get("metadata/m").status, 404);
  EXPECT_EQ(Get("data/m?version=1").status, 404);
}

TEST_F(KvTest, MetadataList) {
  ASSERT_EQ(Put("a", {{"x", 1}}).status, 200);
  ASSERT_EQ(Put("dir/b", {{"x", 1}}).status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/c", {{"max_versions", 2}}).status, 204);
  auto l = d_.Root("LIST", "/v1/secret/metadata/");
  ASSERT_EQ(l.status, 200) << l.body;
  EXPECT_EQ(l.Json()["data"]["keys"], json({"a", "c", "dir/"}));
  EXPECT_EQ(d_.Root("GET", "/v1/secret/metadata/dir/?list=true").Json()["data"]["keys"],
            json({"b"}));
  auto empty = d_.Root("LIST", "/v1/secret/metadata/none/");
  EXPECT_EQ(empty.status, 404);
  EXPECT_EQ(empty.Json(), json::parse(R"({"errors":[]})"));
}

TEST_F(KvTest, MaxVersionsFromKeyThenMountThenTen) {
  // Default 10.
  for (int i = 1; i <= 12; ++i) ASSERT_EQ(Put("def", {{"i", i}}).status, 200);
  json m = Meta("def");
  EXPECT_EQ(m["versions"].size(), 10u);
  EXPECT_EQ(m["oldest_version"], 3);
  EXPECT_EQ(Get("data/def?version=2").status, 404);
  EXPECT_EQ(Get("data/def?version=2").Json(), json::parse(R"({"errors":[]})"));
  EXPECT_EQ(Get("data/def?version=3").status, 200);

  // Mount setting.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"max_versions", 3}}).status, 204);
  EXPECT_EQ(Get("config").Json()["data"]["max_versions"], 3);
  for (int i = 1; i <= 5; ++i) ASSERT_EQ(Put("mnt", {{"i", i}}).status, 200);
  m = Meta("mnt");
  EXPECT_EQ(m["versions"].size(), 3u);
  EXPECT_TRUE(m["versions"].contains("3") && m["versions"].contains("5"));
  EXPECT_EQ(m["oldest_version"], 3);

  // The key setting wins over the mount's.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/key", {{"max_versions", 2}}).status, 204);
  ASSERT_EQ(Put("key", {{"i", 1}}).status, 200);
  EXPECT_EQ(Meta("key")["oldest_version"], 0);  // Vault: 0 until the window fills
  ASSERT_EQ(Put("key", {{"i", 2}}).status, 200);
  EXPECT_EQ(Meta("key")["oldest_version"], 1);
  for (int i = 3; i <= 4; ++i) ASSERT_EQ(Put("key", {{"i", i}}).status, 200);
  m = Meta("key");
  EXPECT_EQ(m["versions"].size(), 2u);
  EXPECT_TRUE(m["versions"].contains("3") && m["versions"].contains("4"));
  EXPECT_EQ(m["current_version"], 4);
  EXPECT_EQ(Get("data/key?version=2").status, 404);
  EXPECT_EQ(Get("data/key?version=3").Json()["data"]["data"]["i"], 3);
  // Raising the limit later keeps what was pruned pruned and oldest_version where it was.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/key", {{"max_versions", 8}}).status, 204);
  ASSERT_EQ(Put("key", {{"i", 5}}).status, 200);
  m = Meta("key");
  EXPECT_EQ(m["oldest_version"], 3);
  EXPECT_EQ(m["versions"].size(), 3u);
}

TEST_F(KvTest, DeleteVersionAfterUsesTheShorterSettingAndExpires) {
  ASSERT_EQ(d_.Root("POST", "/v1/secret/config", {{"delete_version_after", "1h"}}).status, 204);
  EXPECT_EQ(Get("config").Json()["data"]["delete_version_after"], "1h0m0s");
  auto mount_only = Put("long", {{"a", 1}});
  ASSERT_EQ(mount_only.status, 200);
  EXPECT_NE(mount_only.Json()["data"]["deletion_time"], "");
  EXPECT_EQ(Get("data/long").status, 200);  // future deletion_time still reads

  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/short", {{"delete_version_after", "2s"}}).status,
            204);
  auto w = Put("short", {{"a", 1}});
  ASSERT_EQ(w.status, 200);
  json wm = w.Json()["data"];
  ASSERT_NE(wm["deletion_time"], "");
  // deletion_time = created_time + 2s: same second fraction, two seconds later.
  const std::string created = wm["created_time"], deletion = wm["deletion_time"];
  EXPECT_EQ(created.substr(19), deletion.substr(19));
  EXPECT_EQ(std::stoi(deletion.substr(17, 2)), (std::stoi(created.substr(17, 2)) + 2) % 60);
  auto before = Get("data/short");
  EXPECT_EQ(before.status, 200);
  EXPECT_EQ(before.Json()["data"]["data"]["a"], 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto after = Get("data/short");
  EXPECT_EQ(after.status, 404);
  EXPECT_TRUE(after.Json()["data"]["data"].is_null());
  EXPECT_EQ(after.Json()["data"]["metadata"]["deletion_time"], deletion);
  EXPECT_EQ(Get("data/long").status, 200);
  // Undelete re-arms the timer from now.
  ASSERT_EQ(d_.Root("POST", "/v1/secret/undelete/short", json::parse(R"({"versions":[1]})")).status,
            204);
  auto revived = Get("data/short");
  EXPECT_EQ(revived.status, 200);
  EXPECT_GT(revived.Json()["data"]["metadata"]["deletion_time"].get<std::string>(), deletion);
}

TEST_F(KvTest, SubkeysShowStructureWithNullLeaves) {
  ASSERT_EQ(
      Put("sk",
          {{"foo", "abc"}, {"bar", {{"baz", {{"deep", 1}}}, {"q", 2}}}, {"empty", json::object()}})
          .status,
      200);
  ASSERT_EQ(Put("sk", {{"only", 1}}).status, 200);
  auto r = Get("subkeys/sk?version=1");
  ASSERT_EQ(r.status, 200) << r.body;
  json d = r.Json()["data"];
  // An empty object is a leaf (null), like any scalar.
  EXPECT_EQ(d["subkeys"],
            json::parse(R"({"foo":null,"bar":{"baz":{"deep":null},"q":null},"empty":null})"));
  EXPECT_EQ(d["metadata"]["version"], 1);
  EXPECT_EQ(Get("subkeys/sk?version=1&depth=1").Json()["data"]["subkeys"],
            json::parse(R"({"foo":null,"bar":null,"empty":null})"));
  EXPECT_EQ(Get("subkeys/sk?version=1&depth=2").Json()["data"]["subkeys"],
            json::parse(R"({"foo":null,"bar":{"baz":null,"q":null},"empty":null})"));
  EXPECT_EQ(Get("subkeys/sk").Json()["data"]["subkeys"], json::parse(R"({"only":null})"));
  EXPECT_EQ(Get("subkeys/none").status, 404);
  EXPECT_EQ(Get("subkeys/sk?version=9").status, 404);
  EXPECT_EQ(Get("subkeys/sk?depth=x").status, 400);
  ASSERT_EQ(d_.Root("DELETE", "/v1/secret/data/sk").status, 204);
  auto del = Get("subkeys/sk");
  EXPECT_EQ(del.status, 404);
  EXPECT_TRUE(del.Json()["data"]["subkeys"].is_null());
  EXPECT_EQ(del.Json()["data"]["metadata"]["version"], 2);
}

TEST_F(KvTest, OtherMountPathsAnswerVaultsWarning) {
  const std::string base =
      "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
      "endpoints "
      "to use. If using the Vault CLI, use 'vault kv ";
  auto put = d_.Root("PUT", "/v1/secret/foo", {{"a", 1}});
  EXPECT_EQ(put.status, 404);
  json pj = put.Json();
  EXPECT_TRUE(pj["data"].is_null());
  EXPECT_EQ(pj["warnings"], json({base + "put' for this operation."}));
  EXPECT_TRUE(pj.contains("request_id"));
  EXPECT_EQ(Get("foo").Json()["warnings"][0], base + "get' for this operation.");
  EXPECT_EQ(d_.Root("LIST", "/v1/secret/foo").Json()["warnings"][0],
            base + "list' for this operation.");
  EXPECT_EQ(d_.Root("DELETE", "/v1/secret/foo").Json()["warnings"][0],
            base + "delete' for this operation.");
}

TEST_F(KvTest, ConcurrentCasWritersNeverLoseOrDuplicateVersions) {
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/race", {{"max_versions", 1000}}).status, 204);
  constexpr int kPerThread = 100;
  std::vector<int64_t> versions[2];
  std::atomic<int> failures{0}, conflicts{0};
  auto writer = [&](int id) {
    for (int done = 0, attempts = 0; done < kPerThread && attempts < 20 * kPerThread; ++attempts) {
      auto cur = Get("metadata/race");
      if (cur.status != 200) {
        ++failures;
        continue;
      }
      const int64_t current = cur.Json()["data"]["current_version"];
      auto w = Put("race", {{"writer", id}, {"n", done}}, current);
      if (w.status == 200) {
        versions[id].push_back(w.Json()["data"]["version"].get<int64_t>());
        ++done;
      } else if (w.status == 400 && FirstError(w) == kCasMismatch) {
        ++conflicts;
      } else {
        ++failures;
      }
    }
  };
  std::thread t0(writer, 0), t1(writer, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(failures.load(), 0);
  RecordProperty("cas_conflicts", conflicts.load());
  ASSERT_EQ(versions[0].size(), static_cast<size_t>(kPerThread));
  ASSERT_EQ(versions[1].size(), static_cast<size_t>(kPerThread));
  std::vector<int64_t> all(versions[0]);
  all.insert(all.end(), versions[1].begin(), versions[1].end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(all[i], static_cast<int64_t>(i + 1)) << "versions not contiguous";
  json m = Meta("race");
  EXPECT_EQ(m["current_version"], 2 * kPerThread);
  EXPECT_EQ(m["versions"].size(), static_cast<size_t>(2 * kPerThread));
  for (int id = 0; id < 2; ++id) {
    for (size_t i = 1; i < versions[id].size(); ++i)
      EXPECT_LT(versions[id][i - 1], versions[id][i]);
  }
}

// Writes of one key are pipelined (a writer does not hold the key across the sync: the next one
// reads the pending version and queues behind it). Under 6 writers (half check-and-set with
// the last version they saw, half blind) and 2 readers on one key: every acknowledged version
// is distinct and they run 1..N with no hole; a check-and-set write that succeeded got exactly
// cas + 1; a failed one failed only with the cas mismatch; each version reads back with the
// data its writer sent; readers see versions that never go backwards, never older than a write
// acknowledged before the read began, and always with the data of that version.
TEST_F(KvTest, ConcurrentWritersAndReadersOfOneKeyStayConsistent) {
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/hot", {{"max_versions", 10000}}).status, 204);
  constexpr int kWriters = 6;
  constexpr int kPerWriter = 40;
  std::mutex mu;
  std::map<int64_t, std::string> written;  // acknowledged version -> its "w"
  std::atomic<int64_t> max_acked{0};
  std::atomic<int> failures{0}, conflicts{0}, bad_cas{0}, stale_reads{0}, torn_reads{0};
  std::atomic<bool> stop{false};
  std::vector<std::pair<int64_t, std::string>> observed;  // (version, w) from readers
  std::vector<std::thread> ts;
  for (int id = 0; id < kWriters; ++id) {
    ts.emplace_back([&, id] {
      int64_t seen = 0;
      for (int i = 0; i < kPerWriter; ++i) {
        const std::string w = std::to_string(id) + ":" + std::to_string(i);
        const bool cas = id % 2 == 0;
        auto r = Put("hot", {{"w", w}}, cas ? std::optional<json>(seen) : std::nullopt);
        if (r.status == 200) {
          const int64_t v = r.Json()["data"]["version"].get<int64_t>();
          if (cas && v != seen + 1) ++bad_cas;
          seen = v;
          std::lock_guard<std::mutex> lock(mu);
          if (!written.emplace(v, w).second) ++failures;  // a version handed out twice
          int64_t m = max_acked.load();
          while (v > m && !max_acked.compare_exchange_weak(m, v)) {
          }
        } else if (cas && r.status == 400 && FirstError(r) == kCasMismatch) {
          ++conflicts;
          auto cur = Get("metadata/hot");
          if (cur.status == 200) seen = cur.Json()["data"]["current_version"].get<int64_t>();
        } else {
          ++failures;
        }
      }
    });
  }
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!stop) {
        const int64_t floor = max_acked.load();
        auto g = Get("data/hot");
        if (g.status == 404 && floor == 0) continue;
        if (g.status != 200) {
          ++failures;
          continue;
        }
        json d = g.Json()["data"];
        const int64_t v = d["metadata"]["version"].get<int64_t>();
        if (v < floor || v < last) ++stale_reads;
        last = v;
        if (!d["data"].is_object()) {
          ++torn_reads;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        observed.emplace_back(v, d["data"]["w"].get<std::string>());
      }
    });
  }
  for (auto& t : ts) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_cas.load(), 0);
  EXPECT_EQ(stale_reads.load(), 0);
  EXPECT_EQ(torn_reads.load(), 0);
  RecordProperty("cas_conflicts", conflicts.load());
  ASSERT_FALSE(written.empty());
  int64_t expect = 1;
  for (const auto& [v, w] : written) ASSERT_EQ(v, expect++) << "hole or duplicate";
  EXPECT_EQ(Meta("hot")["current_version"], static_cast<int64_t>(written.size()));
  for (const auto& [v, w] : observed) {
    auto it = written.find(v);
    ASSERT_NE(it, written.end()) << "read v" << v << ", never acknowledged";
    EXPECT_EQ(it->second, w) << "read v" << v;
  }
  for (const auto& [v, w] : written) {
    EXPECT_EQ(Get("data/hot?version=" + std::to_string(v)).Json()["data"]["data"]["w"], w);
  }
}

TEST_F(KvTest, VersionsDeletionMarksAndDestroyedFlagsSurviveRestart) {
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(Put("r", {{"i", i}}).status, 200);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/delete/r", json::parse(R"({"versions":[1]})")).status, 204);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/destroy/r", json::parse(R"({"versions":[2]})")).status,
            204);
  ASSERT_EQ(d_.Root("POST", "/v1/secret/metadata/r",
                    {{"custom_metadata", {{"o", "p"}}}, {"max_versions", 7}})
                .status,
            204);
  json before = Meta("r");
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  json after = Meta("r");
  EXPECT_EQ(after, before);
  EXPECT_EQ(after["current_version"], 3);
  EXPECT_NE(after["versions"]["1"]["deletion_time"], "");
  EXPECT_EQ(after["versions"]["2"]["destroyed"], true);
  EXPECT_EQ(Get("data/r?version=1").status, 404);
  EXPECT_EQ(Get("data/r?version=2").Json()["data"]["metadata"]["destroyed"], true);
  EXPECT_EQ(Get("data/r").Json()["data"]["data"]["i"], 3);
  EXPECT_EQ(Put("r", {{"i", 4}}, 3).Json()["data"]["version"], 4);
}

}  // namespace
}  // namespace strongroom::testing
