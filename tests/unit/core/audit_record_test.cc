// The audit records' bytes (appliance/core/audit.h): what the broker writes for each kind of
// request and response is pinned by a golden file, written by the record code as it was before
// records were rendered straight into canonical JSON (issue 22). Every record below is compared
// byte for byte, without its chain members (seq, prev_hash, hash: those depend on batching,
// which tests/unit/core/audit_file_test.cc covers), and the files must verify offline.
//
// UPDATE_GOLDEN=1 rewrites the golden file (only when the format is meant to change).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "appliance/core/audit.h"
#include "appliance/core/backend.h"
#include "appliance/core/token_store.h"
#include "appliance/storage/memory_storage.h"
#include "audit/chain.h"
#include "audit/json.h"
#include "audit/verifier.h"
#include "tests/support/cluster_support.h"
#include "tests/unit/core/audit_test_files.h"
#include "tests/unit/core/audit_test_seal.h"

namespace strongroom::core {
namespace {

using testing::Lines;
using testing::ReadFile;

json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

class AuditRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = strongroom::testing::NewTempDir("audit-record-test");
    ASSERT_FALSE(dir_.empty());
    AddDevice("file", "uuid-file", "salt-file", {});
    AddDevice("plain", "uuid-plain", "salt-plain",
              {{"hmac_accessor", "false"}, {"elide_list_responses", "true"}});
    json::object table;
    table["entries"] = entries_;
    ASSERT_TRUE(barrier_.Put("core/audit", Serialize(table)).ok());
    broker_ = std::make_unique<AuditBroker>(&barrier_, &seal_, [this] { return now_; });
    AuditSettings settings;
    settings.node_id = "node1";
    broker_->set_settings(settings);
    ASSERT_TRUE(broker_->Load().ok());
    ASSERT_EQ(broker_->List().size(), 2u);

    mount_.path = "secret/";
    mount_.type = "kv";
    mount_.accessor = "kv_0a1b2c3d";
    token_.accessor = "accessor-of-the-token";
    token_.policies = {"default", "app-read"};
    token_.display_name = "token-ünï \"quoted\"";
    token_.meta = Obj(R"({"role":"r1","team":"blue"})");
    token_.entity_id = "entity-1";
    token_.ttl = 3600;
    token_.creation_unix = 1714521600;
    token_.num_uses = 3;
    batch_.type = "batch";
    batch_.policies = {"default"};
    batch_.display_name = "batch";
    batch_.creation_unix = 1714521601;
  }
  void TearDown() override {
    if (broker_) broker_->Unload();
    std::filesystem::remove_all(dir_);
  }

  void AddDevice(const std::string& path, const std::string& uuid, const std::string& salt,
                 std::map<std::string, std::string> options) {
    options["file_path"] = dir_ + "/" + path + ".log";
    // An empty log, as the saved state says.
    ASSERT_EQ(::close(::open(options["file_path"].c_str(), O_CREAT | O_WRONLY, 0600)), 0);
    AuditDeviceEntry e;
    e.path = path + "/";
    e.uuid = uuid;
    e.options = options;
    entries_.emplace_back(e.ToJson());
    ASSERT_TRUE(barrier_.Put("sys/audit/" + uuid + "/salt", salt).ok());
    ASSERT_TRUE(barrier_
                    .Put("sys/audit/" + uuid + "/state",
                         R"({"seq":0,"hash":")" + std::string(64, '0') +
                             R"(","tree_size":0,"nodes":[],"offset":0,"note":""})")
                    .ok());
  }

  Request BaseRequest(std::string path, Operation op) {
    Request r;
    r.operation = op;
    r.path = std::move(path);
    r.client_token = "hvs.CLIENT-TOKEN-SECRET";
    r.remote_address = "10.1.2.3";
    r.remote_port = 51234;
    r.request_id = absl::StrCat("00000000-0000-4000-8000-", 100000000000 + ++ids_);
    r.mount = &mount_;
    r.mount_path = "secret/";
    r.mount_type = "kv";
    return r;
  }

  // Logs and notes the outcome in the transcript compared with the golden file.
  void Note(const std::string& what, const absl::Status& s) {
    transcript_ += absl::StrCat("# ", what, ": ", s.ok() ? "OK" : s.ToString(), "\n");
    now_ += absl::Milliseconds(1);
  }

  // Each device's records without chain members, in canonical form, after the transcript.
  std::string Render() {
    broker_->Unload();
    std::string out = transcript_;
    for (const char* device : {"file", "plain"}) {
      const std::string path = dir_ + "/" + device + ".log";
      const std::string text = ReadFile(path);
      // The file verifies offline with the seal's key.
      std::vector<audit::PublicKey> keys;
      keys.push_back(seal_.public_key());
      audit::VerifyOptions vo;
      vo.keys = keys;
      vo.require_signed_tail = true;
      const std::vector<std::string> paths = {path};
      const audit::Report report = audit::VerifyFiles(paths, vo);
      EXPECT_TRUE(report.ok()) << device << ": " << report.failure->ToString();
      EXPECT_TRUE(report.proven());
      out += absl::StrCat("## ", device, "\n");
      for (const std::string& l : Lines(text)) {
        auto obj = audit::ParseJson(l);
        EXPECT_TRUE(obj.ok()) << obj.message();
        if (!obj.ok()) continue;
        const audit::Json* type = obj->Find("type");
        if (type == nullptr || (type->str() != "request" && type->str() != "response")) continue;
        obj->Erase("seq");
        obj->Erase("prev_hash");
        obj->Erase("hash");
        out += audit::CanonicalJson(*obj) + "\n";
      }
    }
    return out;
  }

  std::string dir_;
  json::array entries_;
  storage::MemoryStorage barrier_;
  testing::AuditTestSeal seal_;
  absl::Time now_ = absl::FromUnixNanos(1714521600123456789);
  std::unique_ptr<AuditBroker> broker_;
  MountEntry mount_;
  TokenEntry token_;
  TokenEntry batch_;
  int ids_ = 0;
  std::string transcript_;
};

TEST_F(AuditRecordTest, RecordsMatchTheGoldenFile) {
  // A write with a body of every JSON kind, then its response with auth, wrap_info, a lease and
  // warnings.
  Request write = BaseRequest("secret/data/app", Operation::kUpdate);
  write.has_data = true;
  write.data = Obj(R"({"data":{"password":"hunter2","pin":4231,"neg":-7,
      "big":18446744073709551615,"small":-9223372036854775808,"half":1.5,"huge":1e30,
      "tenth":0.1,"sum":0.30000000000000004,"on":true,"off":false,"none":null,
      "list":[1,"two",[3.25,{"k":"x"}],false,null,[]],
      "nested":{"ünï":"çødé \u2028","ctl":"a\u0001b\n\t\"\\/\u007f","empty":{},"none":[]},
      "key \"quoted\"":"v","bell\u0007":"ring","":"empty key"},
      "options":{"cas":3}})");
  AuditEvent ev;
  ev.request = &write;
  ev.token = &token_;
  Note("write request", broker_->LogRequest(ev));
  Response resp;
  resp.data = Obj(R"({"version":4,"created_time":"2024-05-01T12:00:00Z","destroyed":false,
      "custom_metadata":null})");
  resp.auth = Obj(R"({"client_token":"hvs.NEW-TOKEN","accessor":"new-accessor",
      "policies":["default"],"lease_duration":3600,"renewable":true,"metadata":{"user":"bob"},
      "entity_id":""})");
  resp.wrap_info = Obj(R"({"token":"hvs.WRAPPING","accessor":"wrap-accessor",
      "wrapped_accessor":"wrapped-accessor","ttl":60,"creation_path":"secret/data/app",
      "creation_time":"2024-05-01T12:00:00Z"})");
  resp.lease_id = "secret/creds/app/lease-1";
  resp.warnings = {"first warning", "ünï \"q\""};
  ev.response = &resp;
  Note("write response", broker_->LogResponse(ev));

  // A read answered with data; a list answered with keys (elided on the plain device).
  Request read = BaseRequest("secret/data/app", Operation::kRead);
  AuditEvent rev;
  rev.request = &read;
  rev.token = &token_;
  Note("read request", broker_->LogRequest(rev));
  Response read_resp;
  read_resp.data = Obj(R"({"data":{"password":"hunter2","pin":4231},"metadata":{"version":4}})");
  rev.response = &read_resp;
  Note("read response", broker_->LogResponse(rev));
  Request list = BaseRequest("secret/metadata/", Operation::kList);
  AuditEvent lev;
  lev.request = &list;
  lev.token = &token_;
  Note("list request", broker_->LogRequest(lev));
  Response list_resp;
  list_resp.data = Obj(R"({"keys":["a","b/"],"key_info":{"a":{"x":1},"b/":{}}})");
  lev.response = &list_resp;
  Note("list response", broker_->LogResponse(lev));

  // Refused before a token was accepted: no body, no auth.
  Request anon = BaseRequest("secret/data/app", Operation::kUpdate);
  anon.mount = nullptr;
  anon.client_token = "hvs.BAD-TOKEN";
  anon.has_data = true;
  anon.data = Obj(R"({"data":{"password":"never-in-the-log"}})");
  AuditEvent aev;
  aev.request = &anon;
  aev.error = "permission denied";
  aev.unauthenticated_refusal = true;
  Note("anonymous refusal", broker_->LogRequest(aev));

  // A credential in the path, repeated by the error; a failed response.
  Request lookup = BaseRequest("auth/token/lookup/hvs.TOKEN-IN-PATH", Operation::kRead);
  lookup.mount = nullptr;
  AuditEvent kev;
  kev.request = &lookup;
  kev.token = &token_;
  kev.error = "no handler for route \"auth/token/lookup/hvs.TOKEN-IN-PATH\"";
  Note("credential in path", broker_->LogRequest(kev));
  kev.error = "1 error occurred:\n\t* permission denied\n\n";
  Note("failed response", broker_->LogResponse(kev));

  // A batch token (no accessor), no remote address, no client token.
  Request batch = BaseRequest("sys/mounts", Operation::kRead);
  batch.mount = nullptr;
  batch.remote_address.clear();
  batch.remote_port = 0;
  AuditEvent bev;
  bev.request = &batch;
  bev.token = &batch_;
  Note("batch token", broker_->LogRequest(bev));
  Request no_token = BaseRequest("sys/health", Operation::kRead);
  no_token.client_token.clear();
  no_token.mount = nullptr;
  AuditEvent nev;
  nev.request = &no_token;
  Note("no client token", broker_->LogRequest(nev));

  // The node's own events, in clear.
  AuditSystemEvent sys;
  sys.request_id = "join-1";
  sys.path = "sys/storage/raft/join";
  sys.data = Obj(R"({"step":"add-voter","node_id":"node2","cluster_addr":"10.0.0.2:8201"})");
  Note("system request", broker_->LogSystemEvent(sys));
  sys.is_response = true;
  sys.response_data = Obj(R"({"voter":true})");
  sys.error = "";
  Note("system response", broker_->LogSystemEvent(sys));

  // Nesting: the record's own levels (record, request, data) count; 128 in all is the most the
  // verifier accepts, so a body one level deeper is refused (the request fails closed).
  for (int levels : {126, 127}) {
    Request deep = BaseRequest("secret/data/deep", Operation::kUpdate);
    deep.has_data = true;
    json::value v = "leaf";
    for (int i = 0; i < levels; ++i) {
      json::object o;
      o["d"] = std::move(v);
      v = std::move(o);
    }
    deep.data = v.as_object();
    AuditEvent dev;
    dev.request = &deep;
    dev.token = &token_;
    Note(absl::StrCat("body nested ", levels, " levels"), broker_->LogRequest(dev));
  }
  // A key that is not UTF-8 cannot be written (the verifier would refuse the line).
  Request bad = BaseRequest("secret/data/bad", Operation::kUpdate);
  bad.has_data = true;
  bad.data["bad\xff key"] = "v";
  AuditEvent xev;
  xev.request = &bad;
  xev.token = &token_;
  Note("key not UTF-8", broker_->LogRequest(xev));

  const std::string got = Render();
  const std::string golden_path =
      std::string(STRONGROOM_SOURCE_DIR) + "/tests/unit/core/testdata/audit_records.golden";
  if (getenv("UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary | std::ios::trunc) << got;
  }
  const std::string want = ReadFile(golden_path);
  EXPECT_EQ(got, want) << "records differ from " << golden_path;
}

}  // namespace
}  // namespace strongroom::core
