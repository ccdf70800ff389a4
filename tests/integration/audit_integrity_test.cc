// Issue 23, items 1 and 2, against the real daemon, token and verifier:
//   * nothing the broker did not write gets signed as its own: lines appended to the file while
//     the daemon was down are marked unproven at restart, and the verifier never calls them
//     intact; lines the broker wrote before a crash are proven by their MAC lines;
//   * durable before the answer: the audit file is synced past a request's response record
//     before the client gets the answer (observed with an LD_PRELOAD spy on fdatasync), and a
//     broker killed under load loses no acknowledged request.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/encoding.h"
#include "tests/integration/audit_fixture.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Appends a line that chains onto the file's last line, as someone who can write the file but
// cannot use the token would. Returns its seq.
uint64_t AppendChained(const std::string& path, json line) {
  const auto lines = ReadLines(path);
  EXPECT_FALSE(lines.empty());
  const json last = Line(lines.back());
  audit::ChainState st;
  st.last_seq = last["seq"].get<uint64_t>();
  st.last_hash = *audit::HashFromHex(last["hash"].get<std::string>());
  line["seq"] = st.last_seq + 1;
  line["prev_hash"] = last["hash"];
  auto obj = audit::ParseJson(line.dump());
  EXPECT_TRUE(obj.ok()) << obj.message();
  const audit::Hash h = audit::Sha256({audit::AsBytes(st.last_hash), audit::CanonicalJson(*obj)});
  obj->Set("hash", audit::Json::String(audit::HexEncode(h)));
  std::ofstream(path, std::ios::app) << audit::CanonicalJson(*obj) << "\n";
  return st.last_seq + 1;
}

json ForgedDelete(const std::string& path) {
  return {{"time", "2026-12-06T11:00:00.000000000Z"},
          {"type", "request"},
          {"auth", json::object()},
          {"request",
           {{"id", "00000000-0000-4000-8000-00000000f0f0"},
            {"operation", "delete"},
            {"namespace", {{"id", "root"}}},
            {"path", path}}}};
}

class AuditIntegrityTest : public AuditTest {
 protected:
  json VerifyJson(const std::vector<std::string>& files) {
    RunResult r = Verify(files, {"--json"});
    json j = json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }
};

// The review's attack: with the daemon stopped, a re-chained forged record is appended. Before
// the fix the restart folded it in ("1 lines after the last saved checkpoint"), the next
// checkpoint signed it and the verifier said OK, even with --require-signed-tail. Now the
// restart moves it out of the log into a file of its own, records that in the chain, and the
// verifier reports it instead of OK.
TEST_F(AuditIntegrityTest, AForgedTailIsMovedOutAndNeverSigned) {
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write("a" + std::to_string(i), RandomHex()).status, 200);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);  // clean: the file ends with a checkpoint
  ASSERT_TRUE(IsCheckpoint(ReadLines(log_).back()));
  const std::string before = ReadAll(log_);
  AppendChained(log_, ForgedDelete("secret/data/FORGED-BY-ATTACKER"));
  const std::string forged_bytes = ReadAll(log_).substr(before.size());

  ASSERT_TRUE(d_.Start()) << d_.Log();
  EXPECT_TRUE(d_.WaitForLog("they are marked unproven")) << d_.Log();
  ASSERT_EQ(Write("after", RandomHex()).status, 200);
  ASSERT_EQ(d_.Stop(), 0);

  EXPECT_THAT(ReadAll(log_), Not(HasSubstr("FORGED-BY-ATTACKER")));
  EXPECT_EQ(ReadAll(log_).substr(0, before.size()), before);  // nothing of its own was touched
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--require-signed-tail"}}) {
    RunResult r = Verify({log_}, extra);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, Not(HasSubstr("OK: audit log intact")));
    EXPECT_THAT(r.output, HasSubstr("UNPROVEN"));
  }
  json j = VerifyJson({log_});
  EXPECT_EQ(j["ok"], false);
  EXPECT_TRUE(j["break"].is_null()) << j.dump();  // the chain itself is whole
  ASSERT_EQ(j["unproven"].size(), 1u) << j.dump();
  const json& u = j["unproven"][0];
  EXPECT_EQ(u["lines"], 1);
  EXPECT_EQ(u["bytes"], forged_bytes.size());
  EXPECT_EQ(u["sha256"], audit::HexEncode(audit::Sha256(forged_bytes)));
  // The evidence is kept, byte for byte, in the file the marker names.
  EXPECT_EQ(ReadAll(u["moved_to"].get<std::string>()), forged_bytes);
}

// What the broker itself wrote before a crash is proven by its MAC lines: the restart keeps it
// as its own and the log verifies intact. A forged record and a forged MAC line appended after
// the next crash are moved out, and only they.
TEST_F(AuditIntegrityTest, ACrashedTailIsProvenByItsMacsAndOnlyTheForgeryIsMovedOut) {
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(Write("b" + std::to_string(i), RandomHex()).status, 200);
  FetchPublicKey();
  d_.Kill();  // no final checkpoint
  {
    auto lines = ReadLines(log_);
    ASSERT_FALSE(IsCheckpoint(lines.back()));
    EXPECT_EQ(Line(lines.back())["type"], "mac");  // every batch ends with its MAC line
  }
  const size_t crashed_lines = ReadLines(log_).size();
  ASSERT_TRUE(d_.Start()) << d_.Log();
  ASSERT_EQ(Write("c", RandomHex()).status, 200);
  EXPECT_THAT(d_.Log(), Not(HasSubstr("were not written by this server")));
  d_.Kill();
  {
    RunResult r = Verify({log_});
    EXPECT_EQ(r.exit_code, 0) << r.output;  // all of it proven and, by now, signed
    EXPECT_GT(ReadLines(log_).size(), crashed_lines);
  }

  AppendChained(log_, ForgedDelete("secret/data/b0"));
  const std::string fake_mac = audit::HexEncode(audit::Sha256("not the token's MAC"));
  AppendChained(log_,
                {{"type", "mac"}, {"time", "2026-12-06T11:00:01.000000000Z"}, {"mac", fake_mac}});
  ASSERT_TRUE(d_.Start()) << d_.Log();
  EXPECT_TRUE(d_.WaitForLog("(2 whole lines)")) << d_.Log();
  ASSERT_EQ(Write("d", RandomHex()).status, 200);
  ASSERT_EQ(d_.Stop(), 0);

  json j = VerifyJson({log_});
  EXPECT_TRUE(j["break"].is_null()) << j.dump();
  ASSERT_EQ(j["unproven"].size(), 1u) << j.dump();
  EXPECT_EQ(j["unproven"][0]["lines"], 2);
  EXPECT_GT(j["mac_lines"].get<int>(), 4);
  EXPECT_THAT(ReadAll(log_), Not(HasSubstr(fake_mac)));
}

// Bytes appended to the file while the server runs would sit between its lines: the next write
// notices, fails closed, and SIGHUP runs the recovery, which moves them out.
TEST_F(AuditIntegrityTest, BytesAppendedWhileRunningFailClosedUntilRecovered) {
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  ASSERT_EQ(Write("e0", RandomHex()).status, 200);
  AppendChained(log_, ForgedDelete("secret/data/LIVE-FORGERY"));
  EXPECT_EQ(Write("e1", RandomHex()).status, 500);
  EXPECT_TRUE(d_.WaitForLog("was changed outside the server")) << d_.Log();
  Hup("(recovered)", 1);
  ASSERT_EQ(Write("e2", RandomHex()).status, 200);
  FetchPublicKey();
  ASSERT_EQ(d_.Stop(), 0);
  EXPECT_THAT(ReadAll(log_), Not(HasSubstr("LIVE-FORGERY")));
  json j = VerifyJson({log_});
  EXPECT_TRUE(j["break"].is_null()) << j.dump();
  ASSERT_EQ(j["unproven"].size(), 1u) << j.dump();
  EXPECT_EQ(j["unproven"][0]["lines"], 1);
}

// Durable before the answer. A spy on fdatasync records how much of the audit file was on
// stable storage; right after each answer, the request's response record must lie inside it.
// Before the fix the file was synced only at checkpoints (every 1,000 records here).
TEST_F(AuditIntegrityTest, EachAnswerFollowsTheSyncOfItsAuditRecords) {
  ASSERT_EQ(d_.Stop(), 0);
  const std::string spy_log = d_.dir() + "/syncs";
  const bool started = StartWithSyncSpy(d_, STRONGROOM_SYNC_SPY, spy_log, "/audit.log");
  ASSERT_TRUE(started) << d_.Log();
  ASSERT_EQ(Enable("file", log_, "1000").status, 204);
  for (int i = 0; i < 20; ++i) {
    const std::string key = "durable-" + std::to_string(i);
    ASSERT_EQ(Write(key, RandomHex()).status, 200);
    // The answer is here: find the end of this request's response record in the file.
    const std::string text = ReadAll(log_);
    size_t end = std::string::npos;
    for (size_t at = 0; at < text.size();) {
      const size_t nl = text.find('\n', at);
      if (nl == std::string::npos) break;
      json l = json::parse(text.substr(at, nl - at));
      if (l["type"] == "response" && l["request"]["path"] == "secret/data/" + key) end = nl + 1;
      at = nl + 1;
    }
    ASSERT_NE(end, std::string::npos) << key << " has no response record";
    uint64_t synced = 0;
    std::ifstream syncs(spy_log);
    for (uint64_t n = 0; syncs >> n;) synced = std::max(synced, n);
    EXPECT_GE(synced, end) << key << ": answered before its response record was synced";
  }
  unsetenv("STRONGROOM_SYNC_SPY_LOG");
  unsetenv("STRONGROOM_SYNC_SPY_SUFFIX");
}

// The broker killed (SIGKILL) under concurrent load, at whatever point it is between writing a
// record and answering: every request a client got an answer for has its request and response
// records in the log, the chain is whole, and nothing acknowledged is in an unproven range.
TEST_F(AuditIntegrityTest, AKilledBrokerLosesNoAcknowledgedRequest) {
  ASSERT_EQ(Enable("file", log_, "50").status, 204);
  FetchPublicKey();
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string key = "load-" + std::to_string(t) + "-" + std::to_string(i);
        if (Write(key, "v").status == 200) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert("secret/data/" + key);
        }
      }
    });
  }
  for (int i = 0; i < 600; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acknowledged.size() >= 150) break;
    }
    usleep(20 * 1000);
  }
  d_.Kill();
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_GE(acknowledged.size(), 150u);

  ASSERT_TRUE(d_.Start()) << d_.Log();
  ASSERT_EQ(d_.Stop(), 0);
  json j = VerifyJson({log_});
  EXPECT_TRUE(j["break"].is_null()) << j.dump();
  // A kill between write() and fdatasync() leaves nothing unproven on a live file system
  // (the page cache keeps every byte); only a power loss can tear a batch.
  EXPECT_EQ(j["unproven_markers"], 0) << j.dump();
  std::map<std::string, int> records;  // path -> request and response records seen
  for (const auto& l : ReadLines(log_)) {
    json r = Line(l);
    if (!IsRecord(r)) continue;
    ++records[r["request"]["path"].get<std::string>()];
  }
  size_t missing = 0;
  for (const auto& path : acknowledged) {
    if (records[path] < 2) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acknowledged.size() << " acknowledged requests";
}

}  // namespace
}  // namespace strongroom::testing
