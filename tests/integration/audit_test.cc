// The audit device against the real daemon and the real offline verifier: logs written by
// strongroomd (file device, hash chain, checkpoints signed in the SoftHSM2 token) are checked with
// the strongroom-audit binary, untouched and after every kind of tampering; fail-closed, restart,
// crash and rotation behaviour; no secret in clear; the audit key stays in the token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/json.h"
#include "hsm/rv.h"
#include "hsm/token.h"
#include "tests/integration/audit_fixture.h"
#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

TEST_F(AuditTest, RealLogVerifiesAndHoldsNoSecretInClear) {
  ASSERT_EQ(Enable("file", log_).status, 204) << d_.Log();
  auto list = d_.Root("GET", "/v1/sys/audit");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.Json()["data"]["file/"]["type"], "file");
  EXPECT_EQ(list.Json()["data"]["file/"]["options"]["file_path"], log_);
  EXPECT_EQ(list.Json()["file/"]["path"], "file/");  // Vault's top-level copy

  const std::string secret = "s3cret-" + RandomHex();
  ASSERT_EQ(Write("app", secret).status, 200);
  ASSERT_EQ(Read("app").status, 200);
  auto child = d_.Root("POST", "/v1/auth/token/create", {{"policies", json::array({"default"})}});
  ASSERT_EQ(child.status, 200);
  const std::string child_token = child.Json()["auth"]["client_token"];
  const std::string child_accessor = child.Json()["auth"]["accessor"];
  auto denied = d_.Call("GET", "/v1/secret/data/app", "", {{"X-Vault-Token", child_token}});
  ASSERT_EQ(denied.status, 403);
  const std::string forged = "hvs.forged" + RandomHex();
  ASSERT_EQ(d_.Call("GET", "/v1/secret/data/app", "", {{"X-Vault-Token", forged}}).status, 403);
  auto hash = d_.Root("PUT", "/v1/sys/audit-hash/file", {{"input", secret}});
  ASSERT_EQ(hash.status, 200) << hash.body;
  const std::string digest = hash.Json()["data"]["hash"];
  EXPECT_EQ(hash.Json()["hash"], digest);
  EXPECT_THAT(digest, ::testing::StartsWith("hmac-sha256:"));
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/audit-hash/file", {{"input", ""}}).status, 400);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);

  const std::string text = ReadFileOr(log_);
  for (const std::string& clear :
       {secret, d_.root_token(), child_token, child_accessor, forged, std::string(kPin)}) {
    EXPECT_THAT(text, Not(HasSubstr(clear))) << "in clear in the audit log: " << clear;
  }
  EXPECT_THAT(text, HasSubstr(digest));  // the auditor can find the value by its digest

  // Vault's record shapes: a request and a response with one id; refused requests leave a
  // request record carrying the error.
  const auto lines = ReadLines(log_);
  std::map<std::string, std::vector<json>> by_id;
  bool saw_denied = false, saw_forged = false;
  for (const auto& l : lines) {
    json j = Line(l);
    if (!IsRecord(j)) continue;
    by_id[j["request"]["id"]].push_back(j);
    if (j["request"]["path"] == "secret/data/app" && j.contains("error")) {
      EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("permission denied"));
      if (j["auth"].contains("policies"))
        saw_denied = true;
      else
        saw_forged = true;
    }
  }
  EXPECT_TRUE(saw_denied);
  EXPECT_TRUE(saw_forged);
  bool saw_read = false;
  for (const auto& [id, recs] : by_id) {
    if (recs.size() == 2 && recs[0]["request"]["path"] == "secret/data/app" &&
        recs[0]["request"]["operation"] == "read" && !recs[1].contains("error")) {
      EXPECT_EQ(recs[0]["type"], "request");
      EXPECT_EQ(recs[1]["type"], "response");
      EXPECT_EQ(recs[1]["response"]["data"]["data"]["v"], digest);
      EXPECT_EQ(recs[0]["request"]["mount_type"], "kv");
      EXPECT_THAT(recs[0]["auth"]["client_token"].get<std::string>(),
                  ::testing::StartsWith("hmac-sha256:"));
      saw_read = true;
    }
  }
  EXPECT_TRUE(saw_read);

  RunResult ok = Verify({log_}, {"--require-signed-tail"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("OK: audit log intact"));
}

// Issue 23 item 6: numbers are hashed as Vault hashes them (its JSON decoder keeps them as
// strings); booleans stay as they are, as in Vault. Vault API section: audit devices (hashing).
TEST_F(AuditTest, NumbersAreHashedLikeStrings) {
  ASSERT_EQ(Enable("file", log_).status, 204) << d_.Log();
  const json data = {{"pin", 987654321},
                     {"ratio", 31.4159},
                     {"big", 18446744073709551615u},
                     {"nested", {{"card", {4111111111111111LL}}}},
                     {"flag", true}};
  ASSERT_EQ(d_.Root("POST", "/v1/secret/data/numbers", {{"data", data}}).status, 200);
  ASSERT_EQ(d_.Root("GET", "/v1/secret/data/numbers").status, 200);
  auto hash = d_.Root("PUT", "/v1/sys/audit-hash/file", {{"input", "987654321"}});
  ASSERT_EQ(hash.status, 200) << hash.body;
  ASSERT_EQ(d_.Stop(), 0);
  const std::string text = ReadFileOr(log_);
  for (const std::string clear :
       {"987654321", "31.4159", "18446744073709551615", "4111111111111111"}) {
    EXPECT_THAT(text, Not(HasSubstr(clear))) << "in clear in the audit log: " << clear;
  }
  EXPECT_THAT(text, HasSubstr(hash.Json()["data"]["hash"].get<std::string>()));
  EXPECT_THAT(text, HasSubstr("\"flag\":true"));
}

TEST_F(AuditTest, EveryKindOfTamperingIsCaughtAndTheLineNamed) {
  ASSERT_EQ(Enable("file", log_).status, 204);
  const std::string other = d_.dir() + "/other.log";
  ASSERT_EQ(Enable("other", other).status, 204);
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(Write("k" + std::to_string(i), RandomHex()).status, 200);
    ASSERT_EQ(Read("k" + std::to_string(i)).status, 200);
  }
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);
  const auto lines = ReadLines(log_);
  ASSERT_GT(lines.size(), 30u);
  ASSERT_EQ(Verify({log_}).exit_code, 0) << Verify({log_}).output;

  // k: a record line (0-based) somewhere in the middle; line numbers are 1-based.
  size_t k = 9;
  while (!IsRecord(Line(lines[k]))) ++k;
  ASSERT_LT(k + 1, lines.size());
  {
    auto t = lines;
    const size_t at = t[k].find("\"operation\":\"");
    ASSERT_NE(at, std::string::npos);
    t[k][at + 13] = t[k][at + 13] == 'r' ? 'u' : 'r';  // one byte
    ExpectBreakAt("edited byte", t, k + 1);
  }
  {
    auto t = lines;
    t.erase(t.begin() + static_cast<ptrdiff_t>(k));
    ExpectBreakAt("deleted line", t, k + 1);
  }
  {
    auto t = lines;
    std::swap(t[k], t[k + 1]);
    ExpectBreakAt("swapped lines", t, k + 1);
  }
  {
    auto t = lines;
    t.erase(t.begin() + 1, t.begin() + 4);
    ExpectBreakAt("lines cut before the last checkpoint", t, 2);
  }
  {
    // A forged record with a correct hash, and every later line re-chained: only a signature
    // can tell, so the first checkpoint after it breaks.
    auto t = lines;
    json forged = Line(t[k]);
    forged["request"]["path"] = "secret/data/innocent";
    t.insert(t.begin() + static_cast<ptrdiff_t>(k + 1), forged.dump());
    Rechain(t, k + 1);
    size_t next_checkpoint = k + 2;
    while (!IsCheckpoint(t[next_checkpoint])) ++next_checkpoint;
    ExpectBreakAt("forged line with recomputed hashes", t, next_checkpoint + 1);
  }
  {
    // Two logs spliced: the first ten lines of this one, the rest of another device's.
    auto t = lines;
    const auto o = ReadLines(other);
    ASSERT_GT(o.size(), 12u);
    t.resize(10);
    t.insert(t.end(), o.begin() + 10, o.end());
    ExpectBreakAt("spliced logs", t, 11);
  }
  {
    // The last checkpoint replaced by one over the same state signed with another key.
    auto t = lines;
    size_t last = t.size() - 1;
    while (!IsCheckpoint(t[last])) --last;
    const audit::ChainState st = StateAfter(t, last);
    const std::string origin = Line(t[last])["checkpoint"].get<std::string>();
    const std::string node =
        origin.substr(0, origin.find('\n')).substr(std::string("strongroom-audit/file/").size());
    auto body = audit::CheckpointBody("file", node, st, Line(t[last])["time"].get<std::string>());
    ASSERT_TRUE(body.ok()) << body.message();
    auto key = audit::PrivateKey::Generate(audit::KeyType::kEcdsaP256);
    ASSERT_TRUE(key.ok());
    auto note = audit::SignCheckpoint(*body, *key);
    ASSERT_TRUE(note.ok()) << note.message();
    auto pub = key->Public();
    ASSERT_TRUE(pub.ok());
    std::vector<audit::PublicKey> keys;
    keys.push_back(std::move(*pub));
    auto forged = audit::MakeCheckpointLine(*note, st, keys);
    ASSERT_TRUE(forged.ok()) << forged.message();
    t[last] = forged->line.substr(0, forged->line.size() - 1);
    ExpectBreakAt("checkpoint signed by another key", t, last + 1);
  }
  RunResult intact = Verify({log_});
  EXPECT_EQ(intact.exit_code, 0) << intact.output;
}

TEST_F(AuditTest, ATrustedCheckpointCatchesACutTailAndAnOlderCopy) {
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write("a" + std::to_string(i), RandomHex()).status, 200);
  fs::copy_file(log_, d_.dir() + "/old-copy.log");
  const size_t old_lines = ReadLines(log_).size();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write("b" + std::to_string(i), RandomHex()).status, 200);
  // What an auditor fetches from the live daemon.
  auto cp = d_.Root("GET", "/v1/sys/audit/checkpoint/file");
  ASSERT_EQ(cp.status, 200) << cp.body;
  const std::string cp_file = d_.dir() + "/trusted.checkpoint";
  std::ofstream(cp_file) << cp.Json()["data"]["checkpoint"].get<std::string>();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write("c" + std::to_string(i), RandomHex()).status, 200);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);

  RunResult whole = Verify({log_}, {"--checkpoint", cp_file});
  EXPECT_EQ(whole.exit_code, 0) << whole.output;

  // An older copy passes on its own (it is a consistent, shorter log)...
  ASSERT_LT(old_lines, ReadLines(log_).size());
  EXPECT_EQ(Verify({d_.dir() + "/old-copy.log"}).exit_code, 0);
  // ...and fails against the newer checkpoint.
  RunResult old = Verify({d_.dir() + "/old-copy.log"}, {"--checkpoint", cp_file});
  EXPECT_EQ(old.exit_code, 1) << old.output;

  // The tail cut back past what the fetched checkpoint covers (its line and the record before).
  auto lines = ReadLines(log_);
  size_t cut = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (IsCheckpoint(lines[i]) && Line(lines[i])["checkpoint"] == cp.Json()["data"]["checkpoint"]) {
      cut = i;
    }
  }
  ASSERT_GT(cut, 1u);
  lines.resize(cut - 1);
  const std::string cut_path = d_.dir() + "/cut.log";
  WriteLines(cut_path, lines);
  EXPECT_EQ(Verify({cut_path}).exit_code, 0);
  RunResult cut_run = Verify({cut_path}, {"--checkpoint", cp_file});
  EXPECT_EQ(cut_run.exit_code, 1) << cut_run.output;
}

TEST_F(AuditTest, TheChainSurvivesACrashARestartAndRotation) {
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write("a" + std::to_string(i), RandomHex()).status, 200);
  d_.Kill();  // no final checkpoint: the unsigned tail must be picked up from the file
  ASSERT_TRUE(d_.Start()) << d_.Log();
  EXPECT_TRUE(d_.WaitForLog("lines after the last saved checkpoint"));
  const std::string secret = RandomHex();
  ASSERT_EQ(Write("b", secret).status, 200);
  ASSERT_TRUE(d_.Restart()) << d_.Log();  // clean: ends with a checkpoint, reloads the device
  ASSERT_EQ(d_.Root("GET", "/v1/sys/audit").Json()["data"]["file/"]["type"], "file");
  EXPECT_EQ(Read("b").Json()["data"]["data"]["v"], secret);

  // logrotate: move the file away, SIGHUP; the old file ends signed, the new one continues.
  ASSERT_EQ(rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  Hup("reopened", 1);
  ASSERT_EQ(Write("c", RandomHex()).status, 200);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);
  EXPECT_TRUE(IsCheckpoint(ReadLines(log_ + ".1").back()));

  RunResult r = Verify({log_ + ".1", log_}, {"--require-signed-tail"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("files:              2"));
  // The rotated-out file alone is not the whole log; in the wrong order neither.
  EXPECT_EQ(Verify({log_}).exit_code, 1);
  EXPECT_EQ(Verify({log_, log_ + ".1"}).exit_code, 1);
}

TEST_F(AuditTest, RequestsFailClosedWhenNoDeviceCanWrite) {
  // Not a regular file: refused before anything is written (issue 15, item 15a).
  auto full = Enable("full", "/dev/full");
  EXPECT_EQ(full.status, 400);
  EXPECT_THAT(full.body, HasSubstr("not a regular file"));
  EXPECT_EQ(d_.Root("GET", "/v1/sys/audit").Json()["data"].size(), 0u);

  ASSERT_EQ(Enable("file", log_).status, 204);
  ASSERT_EQ(Write("before", "v").status, 200);

  // The file swapped for a symlink to /dev/full (writes there fail with ENOSPC): the reopen
  // refuses the link (O_NOFOLLOW), and every request fails closed.
  ASSERT_EQ(rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  ASSERT_EQ(symlink("/dev/full", log_.c_str()), 0);
  Hup("is a symbolic link", 1);
  auto refused = Write("during", "must-not-be-stored");
  EXPECT_EQ(refused.status, 500) << refused.body;
  ASSERT_GE(refused.Json()["errors"].size(), 2u) << refused.body;
  EXPECT_EQ(refused.Json()["errors"][0], "internal error");
  EXPECT_THAT(refused.Json()["errors"][1].get<std::string>(),
              HasSubstr("no audit device could record the request"));
  EXPECT_EQ(Read("before").status, 500);  // reads too: nothing runs unaudited

  // A file that cannot be opened at all (as on a read-only or vanished filesystem).
  ASSERT_EQ(unlink(log_.c_str()), 0);
  ASSERT_EQ(mkdir(log_.c_str(), 0700), 0);
  Hup("reopen failed", 2);
  EXPECT_EQ(Write("during", "must-not-be-stored").status, 500);
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/other", {{"type", "kv"}}).status, 500);

  // Fixed: requests run again, and nothing refused was applied.
  ASSERT_EQ(rmdir(log_.c_str()), 0);
  Hup("reopened", 1);
  EXPECT_EQ(Read("during").status, 404);
  EXPECT_EQ(Read("before").status, 200);
  EXPECT_EQ(d_.Root("GET", "/v1/sys/mounts").Json()["data"].count("other/"), 0u);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);
  RunResult r = Verify({log_ + ".1", log_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(AuditTest, BadDeviceRequestsAreRefusedClearly) {
  auto enable = [&](const std::string& name, const json& options) {
    return d_.Root("PUT", "/v1/sys/audit/" + name, {{"type", "file"}, {"options", options}});
  };
  EXPECT_THAT(enable("f", {{"file_path", "relative.log"}}).body, HasSubstr("absolute path"));
  EXPECT_THAT(enable("f", {{"file_path", log_}, {"log_raw", "true"}}).body,
              HasSubstr("log_raw is not supported"));
  EXPECT_THAT(enable("f", {{"file_path", log_}, {"colour", "red"}}).body,
              HasSubstr("unknown audit option \\\"colour\\\""));
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/audit/f", {{"type", "syslog"}}).status, 400);
  std::ofstream(d_.dir() + "/used.log") << "old content\n";
  ASSERT_EQ(chmod((d_.dir() + "/used.log").c_str(), 0600), 0);  // a mode the device accepts
  auto used = enable("f", {{"file_path", d_.dir() + "/used.log"}});
  EXPECT_EQ(used.status, 400);
  EXPECT_THAT(used.body, HasSubstr("not empty"));
  EXPECT_EQ(enable("public-key", {{"file_path", log_}}).status, 400);
  ASSERT_EQ(enable("f", {{"file_path", log_}}).status, 204);
  EXPECT_THAT(enable("f", {{"file_path", log_ + "2"}}).body, HasSubstr("path already in use"));
  EXPECT_THAT(enable("g", {{"file_path", log_}}).body, HasSubstr("already writes"));
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/audit-hash/nope", {{"input", "x"}}).status, 400);

  // sudo is required to manage devices; the key and checkpoints need only read.
  ASSERT_EQ(
      d_.Root("PUT", "/v1/sys/policies/acl/auditor",
              {{"policy",
                "path \"sys/audit/*\" { capabilities = [\"create\", \"update\", \"read\"] }"}})
          .status,
      204);
  auto tok = d_.Root("POST", "/v1/auth/token/create", {{"policies", json::array({"auditor"})}});
  const std::string auditor = tok.Json()["auth"]["client_token"];
  const std::vector<std::pair<std::string, std::string>> h = {{"X-Vault-Token", auditor}};
  EXPECT_EQ(
      d_.Call("PUT", "/v1/sys/audit/x", R"({"type":"file","options":{"file_path":"/tmp/x"}})", h)
          .status,
      403);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/audit/public-key", "", h).status, 200);
  EXPECT_EQ(d_.Call("GET", "/v1/sys/audit/checkpoint/f", "", h).status, 200);

  // Disabling ends the file with a checkpoint and forgets the salt.
  ASSERT_EQ(d_.Root("DELETE", "/v1/sys/audit/f").status, 204);
  EXPECT_TRUE(IsCheckpoint(ReadLines(log_).back()));
  EXPECT_EQ(d_.Root("PUT", "/v1/sys/audit-hash/f", {{"input", "x"}}).status, 400);
  FetchPublicKey();
  EXPECT_EQ(Verify({log_}, {"--require-signed-tail"}).exit_code, 0);
}

TEST_F(AuditTest, AccessorsInClearAndElidedListsWhenAsked) {
  ASSERT_EQ(
      d_.Root("PUT", "/v1/sys/audit/file",
              {{"type", "file"},
               {"options",
                {{"file_path", log_}, {"hmac_accessor", "false"}, {"elide_list_responses", true}}}})
          .status,
      204);
  for (const char* k : {"a", "b", "c"}) ASSERT_EQ(Write(k, RandomHex()).status, 200);
  ASSERT_EQ(d_.Root("LIST", "/v1/secret/metadata").status, 200);
  const std::string accessor =
      d_.Root("GET", "/v1/auth/token/lookup-self").Json()["data"]["accessor"];
  ASSERT_EQ(d_.Stop(), 0);
  bool saw_list = false;
  for (const auto& l : ReadLines(log_)) {
    json j = Line(l);
    if (!IsRecord(j)) continue;
    EXPECT_EQ(j["auth"]["accessor"], accessor);  // hmac_accessor = false
    EXPECT_THAT(j["auth"]["client_token"].get<std::string>(),
                ::testing::StartsWith("hmac-sha256:"));
    if (j["type"] == "response" && j["request"]["operation"] == "list") {
      EXPECT_EQ(j["response"]["data"]["keys"], 3);  // elided to the count
      saw_list = true;
    }
  }
  EXPECT_TRUE(saw_list);
}

TEST_F(AuditTest, TheAuditKeyStaysInTheTokenAndTheCliPrintsIt) {
  ASSERT_EQ(Enable("file", log_).status, 204);
  const std::string pem = ReadFileOr(FetchPublicKey());
  ASSERT_THAT(pem, HasSubstr("BEGIN PUBLIC KEY"));
  ASSERT_EQ(d_.Stop(), 0);

  RunResult cli = RunStrongroomd({"-config=" + d_.config_path(), "-audit-public-key"});
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(cli.output, pem);

  auto token = hsm::Token::Open(d_.TokenConfig());
  ASSERT_TRUE(token.ok()) << token.status();
  auto key = (*token)->FindSigningKey("strongroom-audit");
  ASSERT_TRUE(key.ok()) << key.status();
  auto attrs = (*token)->GetKeyAttributes(key->private_key);
  ASSERT_TRUE(attrs.ok());
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_EQ(ReadValueAnswer(**token, key->private_key), "CKR_ATTRIBUTE_SENSITIVE");
}

}  // namespace
}  // namespace strongroom::testing
