// The audit tests' fixture: a real daemon with a kv-v2 mount, the real offline verifier, and the
// tools a forger has (re-chaining edited lines). Shared by audit_test.cc and
// audit_integrity_test.cc.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/json.h"
#include "tests/support/daemon.h"

namespace strongroom::testing {

using json = nlohmann::json;

inline constexpr char kPin[] = "pin-Zq81-unlikely-in-hex";

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

inline void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) out << l << "\n";
}

inline std::string RandomHex() {
  std::ifstream r("/dev/urandom", std::ios::binary);
  unsigned char b[12];
  r.read(reinterpret_cast<char*>(b), sizeof b);
  std::string s;
  for (unsigned char c : b) {
    static const char* kHex = "0123456789abcdef";
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

inline json Line(const std::string& l) { return json::parse(l); }
inline bool IsCheckpoint(const std::string& l) { return Line(l)["type"] == "checkpoint"; }
// Request and response records (not checkpoints, MAC lines or unproven markers).
inline bool IsRecord(const json& j) { return j["type"] == "request" || j["type"] == "response"; }

// Recomputes seq, prev_hash and hash of lines[from..] so they chain again (what a forger who
// can edit the file but not sign does after inserting or changing a line).
inline void Rechain(std::vector<std::string>& lines, size_t from) {
  for (size_t i = from; i < lines.size(); ++i) {
    auto obj = audit::ParseJson(lines[i]);
    ASSERT_TRUE(obj.ok()) << obj.message();
    std::string prev_hex(64, '0');
    uint64_t seq = 1;
    if (i > 0) {
      json prev = Line(lines[i - 1]);
      prev_hex = prev["hash"].get<std::string>();
      seq = prev["seq"].get<uint64_t>() + 1;
    }
    obj->Set("seq", audit::Json::Uint(seq));
    obj->Set("prev_hash", audit::Json::String(prev_hex));
    obj->Erase("hash");
    const auto prev_hash = audit::HashFromHex(prev_hex);
    ASSERT_TRUE(prev_hash.has_value());
    const audit::Hash h = audit::Sha256({audit::AsBytes(*prev_hash), audit::CanonicalJson(*obj)});
    obj->Set("hash", audit::Json::String(audit::HexEncode(h)));
    lines[i] = audit::CanonicalJson(*obj);
  }
}

// The writer's chain state after lines[0..n) (as the broker folds them on restart).
inline audit::ChainState StateAfter(const std::vector<std::string>& lines, size_t n) {
  audit::ChainState st;
  for (size_t i = 0; i < n; ++i) {
    auto rec = audit::ParseChainedLine(lines[i]);
    EXPECT_TRUE(rec.ok()) << rec.message();
    st.last_seq = rec->seq;
    st.last_hash = rec->hash;
    if (rec->is_leaf()) st.tree.Append(audit::HashLeaf(rec->canonical));
  }
  return st;
}

class AuditTest : public ::testing::Test {
 protected:
  AuditTest() : d_(MakeOptions()) {}
  static Daemon::Options MakeOptions() {
    Daemon::Options o;
    o.token_pin = kPin;
    return o;
  }

  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
    log_ = d_.dir() + "/audit.log";
  }

  HttpResponse Enable(const std::string& name, const std::string& file,
                      const std::string& checkpoint_entries = "4") {
    return d_.Root(
        "PUT", "/v1/sys/audit/" + name,
        {{"type", "file"},
         {"options", {{"file_path", file}, {"checkpoint_entries", checkpoint_entries}}}});
  }
  HttpResponse Write(const std::string& key, const std::string& value) {
    return d_.Root("POST", "/v1/secret/data/" + key, {{"data", {{"v", value}}}});
  }
  HttpResponse Read(const std::string& key) { return d_.Root("GET", "/v1/secret/data/" + key); }

  // The public key from the live daemon, written to <dir>/audit.pem.
  std::string FetchPublicKey() {
    auto r = d_.Root("GET", "/v1/sys/audit/public-key");
    EXPECT_EQ(r.status, 200) << r.body;
    pem_ = d_.dir() + "/audit.pem";
    std::ofstream(pem_) << r.Json()["data"]["public_key"].get<std::string>();
    return pem_;
  }

  RunResult Verify(const std::vector<std::string>& files, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"verify", "--pubkey", pem_};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), files.begin(), files.end());
    return RunProgram(AuditVerifierBinary(), args);
  }

  // Writes `lines` to <dir>/<name> and expects the verifier to reject it at line `line`.
  void ExpectBreakAt(const std::string& what, const std::vector<std::string>& lines, size_t line,
                     std::vector<std::string> extra = {}) {
    const std::string path = d_.dir() + "/tampered.log";
    WriteLines(path, lines);
    RunResult r = Verify({path}, extra);
    EXPECT_EQ(r.exit_code, 1) << what << "\n" << r.output;
    EXPECT_THAT(r.output, ::testing::HasSubstr("tampered.log:" + std::to_string(line) + ":"))
        << what << "\n"
        << r.output;
  }

  void Hup(const std::string& wait_for, int occurrence) {
    ASSERT_EQ(kill(d_.pid(), SIGHUP), 0);
    for (int i = 0; i < 400; ++i) {
      std::string log = d_.Log();
      int n = 0;
      for (size_t at = 0; (at = log.find(wait_for, at)) != std::string::npos; ++at) ++n;
      if (n >= occurrence) return;
      usleep(25 * 1000);
    }
    FAIL() << "no \"" << wait_for << "\" #" << occurrence << " in the log:\n" << d_.Log();
  }

  Daemon d_;
  std::string log_;
  std::string pem_;
};

}  // namespace strongroom::testing
