// Builds synthetic audit logs with the writer-side helpers (audit/chain.h), and the tampering
// tools the tests use on them. Records are shaped like Vault file-audit records (vault-api.md
// section 8.1).
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "audit/keys.h"

namespace strongroom::audit::testing {

inline std::string Must(Result<std::string> r) {
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? std::move(r).value() : std::string();
}

inline PrivateKey MustKey(KeyType type) {
  Result<PrivateKey> k = PrivateKey::Generate(type);
  EXPECT_TRUE(k.ok()) << k.message();
  return std::move(k).value();
}

inline PublicKey MustPublic(const PrivateKey& key) {
  Result<PublicKey> k = key.Public();
  EXPECT_TRUE(k.ok()) << k.message();
  return std::move(k).value();
}

inline std::string Time(uint64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "2024-05-01T12:%02u:%02u.%09uZ",
                static_cast<unsigned>(n / 60 % 60), static_cast<unsigned>(n % 60),
                static_cast<unsigned>(n * 7919 % 1000000000));
  return buf;
}

// A Vault-shaped request or response record (without chain fields).
inline std::string VaultRecord(uint64_t n, std::string_view flavour = "a") {
  const std::string hmac = "hmac-sha256:" + HexEncode(Sha256("token-" + std::to_string(n)));
  const std::string id = "6f1c0b3e-0000-4000-8000-" + std::string(flavour) + std::to_string(n);
  std::string rec =
      R"({"time":")" + Time(n) + R"(","type":")" + (n % 2 == 1 ? "request" : "response") + R"(",)";
  rec += R"("auth":{"client_token":")" + hmac + R"(","accessor":")" + hmac + R"(",)";
  rec += R"("display_name":"kubernetes-lobstack-agent-ü \"quoted\"",)";
  rec += R"("policies":["default","agent"],"policy_results":{"allowed":true,)";
  rec += R"("granting_policies":[{"name":"agent","namespace_id":"root","type":"acl"}]},)";
  rec += R"("metadata":{"role":"agent","service_account_name":"agent-7"},)";
  rec += R"("token_type":"service","token_ttl":3600,)";
  rec += R"("token_issue_time":"2024-05-01T11:00:00Z","remaining_uses":0},)";
  rec += R"("request":{"id":")" + id + R"(","operation":"read","mount_point":"secret/",)";
  rec += R"("mount_type":"kv","path":"secret/data/lobstack/agent/7",)";
  rec += R"("data":{"value":")" + hmac + R"("},"remote_address":"10.0.0.5","remote_port":51234,)";
  rec += R"("wrap_ttl":0})";
  if (n % 2 == 0) {
    rec += R"(,"response":{"mount_point":"secret/","data":{"data":{"api_key":")" + hmac +
           R"("}},"warnings":[]})";
  }
  if (n % 5 == 0) rec += R"(,"error":"1 error occurred:\n\t* permission denied\n\n")";
  rec += "}";
  return rec;
}

class LogBuilder {
 public:
  LogBuilder(const PrivateKey* key, std::string device = "dev1", std::string node = "node1",
             std::string flavour = "a")
      : key_(key),
        device_(std::move(device)),
        node_(std::move(node)),
        flavour_(std::move(flavour)) {}

  void AddRecord() {
    ++records_;
    Result<ChainedLine> line = MakeChainedLine(VaultRecord(records_, flavour_), state_);
    ASSERT_TRUE(line.ok()) << line.message();
    lines_.push_back(line->line);
    state_ = line->next;
  }

  void AddRecords(int n) {
    for (int i = 0; i < n; ++i) AddRecord();
  }

  // A checkpoint signed with `signer` (default: the builder's key).
  void AddCheckpoint(const PrivateKey* signer = nullptr) {
    if (signer == nullptr) signer = key_;
    const std::string body =
        Must(CheckpointBody(device_, node_, state_, Time(state_.last_seq + 1)));
    last_note_ = Must(SignCheckpoint(body, *signer));
    PublicKey pub = MustPublic(*signer);
    Result<ChainedLine> line = MakeCheckpointLine(last_note_, state_, std::span(&pub, 1));
    ASSERT_TRUE(line.ok()) << line.message();
    lines_.push_back(line->line);
    state_ = line->next;
  }

  // A MAC line (its MAC is arbitrary here: only the writer, holding the key, can check it).
  void AddMac() {
    Result<ChainedLine> line = MakeMacLine(Sha256("mac-" + std::to_string(state_.last_seq)),
                                           Time(state_.last_seq + 1), state_);
    ASSERT_TRUE(line.ok()) << line.message();
    lines_.push_back(line->line);
    state_ = line->next;
  }

  // An unproven marker: a tail of `lines` lines was moved out of the log.
  void AddUnproven(uint64_t lines) {
    RemovedTail removed;
    removed.lines = lines;
    removed.bytes = lines * 100;
    removed.sha256 = Sha256("removed");
    removed.moved_to = "/var/log/strongroom/audit.log.unproven-1";
    removed.reason = "found after the last proof at restart";
    Result<ChainedLine> line = MakeUnprovenLine(removed, Time(state_.last_seq + 1), state_);
    ASSERT_TRUE(line.ok()) << line.message();
    lines_.push_back(line->line);
    state_ = line->next;
  }

  const std::vector<std::string>& lines() const { return lines_; }
  std::vector<std::string>& mutable_lines() { return lines_; }
  const ChainState& state() const { return state_; }
  const std::string& last_note() const { return last_note_; }

  // Lines [from, to) (0-based) concatenated.
  std::string Text(size_t from = 0, size_t to = SIZE_MAX) const {
    std::string out;
    for (size_t i = from; i < lines_.size() && i < to; ++i) out += lines_[i];
    return out;
  }

 private:
  const PrivateKey* key_;
  std::string device_;
  std::string node_;
  std::string flavour_;
  ChainState state_;
  uint64_t records_ = 0;
  std::vector<std::string> lines_;
  std::string last_note_;
};

// Lines [from, to) concatenated.
inline std::string Join(const std::vector<std::string>& lines, size_t from = 0,
                        size_t to = SIZE_MAX) {
  std::string out;
  for (size_t i = from; i < lines.size() && i < to; ++i) out += lines[i];
  return out;
}

// What logrotate's `compress` makes of `text` (gzip -9), via zlib.
inline std::string Gzip(const std::string& text) {
  std::string out(compressBound(static_cast<uLong>(text.size())) + 64, '\0');
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Recomputes seq, prev_hash and hash of lines[from...] so that the chain is intact again from
// there on (what a tamperer without the signing key can do). Checkpoint notes stay as they are.
inline void Rechain(std::vector<std::string>* lines, size_t from) {
  uint64_t seq = 0;
  Hash prev{};
  if (from > 0) {
    Result<Json> before = ParseJson((*lines)[from - 1]);
    ASSERT_TRUE(before.ok());
    seq = *before->Find("seq")->AsUint();
    prev = *HashFromHex(before->Find("hash")->str());
  }
  for (size_t i = from; i < lines->size(); ++i) {
    std::string text = (*lines)[i];
    if (!text.empty() && text.back() == '\n') text.pop_back();
    Result<Json> obj = ParseJson(text);
    ASSERT_TRUE(obj.ok()) << obj.message();
    obj->Erase("hash");
    obj->Set("seq", Json::Uint(++seq));
    obj->Set("prev_hash", Json::String(HexEncode(prev)));
    prev = Sha256({AsBytes(prev), CanonicalJson(*obj)});
    obj->Set("hash", Json::String(HexEncode(prev)));
    (*lines)[i] = CanonicalJson(*obj) + "\n";
  }
}

}  // namespace strongroom::audit::testing
