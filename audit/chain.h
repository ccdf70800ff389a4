// The audit log line format, shared by the writer (the broker) and the verifier.
//
// A log is a sequence of lines, each one canonical JSON object (json.h) followed by '\n', spread
// over one or more files in order (rotation continues the chain). Every line carries
//   "seq":       1, 2, 3, ... per audit device, across files;
//   "prev_hash": the "hash" of the previous line, 64 zeros for seq 1;
//   "hash":      hex SHA-256(prev_hash as 32 raw bytes || C), where C is the canonical JSON of
//                the line's object without the "hash" member;
// and the line itself must be exactly the canonical JSON of the whole object (so every byte of
// the file is covered by the hash).
//
// Two kinds of line:
//   * records (Vault file-audit shaped: "time", "type" ("request"/"response"), "auth", "request",
//     "response", "error", ...): each is a Merkle leaf; leaf data = C, so the leaf hash is
//     SHA-256(0x00 || C). Leaf index = number of records before it (checkpoints do not count).
//   * checkpoints: exactly {"checkpoint","hash","prev_hash","seq","time","type":"checkpoint"},
//     where "checkpoint" is a signed note (checkpoint.h) over the records so far. Checkpoints are
//     chained like records but are not Merkle leaves (a checkpoint cannot cover itself).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "audit/checkpoint.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "audit/keys.h"
#include "audit/merkle.h"
#include "audit/result.h"

namespace strongroom::audit {

inline constexpr std::string_view kCheckpointType = "checkpoint";
// Longest accepted line (without its newline).
inline constexpr size_t kMaxLineBytes = 16 * 1024 * 1024;

// One line, parsed and checked on its own (canonical form, field types, its hash over its own
// content). Whether it fits the chain is the verifier's business.
struct ChainedRecord {
  Json object;  // the whole line
  uint64_t seq = 0;
  Hash prev_hash{};
  Hash hash{};
  std::string canonical;  // C: canonical JSON without "hash" (hashed; the Merkle leaf data)
  std::string type;
  std::string time;
  bool is_checkpoint = false;
  std::string note;  // checkpoints only: the signed note
};

Result<ChainedRecord> ParseChainedLine(std::string_view line);

// ---- Writer side ---------------------------------------------------------------------------

// Everything the writer needs to append the next line: O(log n) memory.
struct ChainState {
  uint64_t last_seq = 0;  // 0 before the first line
  Hash last_hash{};       // zeros before the first line
  CompactRange tree;      // Merkle leaves so far

  friend bool operator==(const ChainState&, const ChainState&) = default;
};

struct ChainedLine {
  std::string line;  // canonical JSON and '\n', ready to append
  ChainState next;   // the state once `line` is durably written; keep the old one until then
};

// Chains one audit record. `record_json` is a JSON object with string "type" (not "checkpoint")
// and "time" members and no "seq", "prev_hash" or "hash" members.
Result<ChainedLine> MakeChainedLine(std::string_view record_json, const ChainState& state);
// The same for an already parsed record: writers parse outside their lock and chain inside it.
Result<ChainedLine> MakeChainedLine(Json record, const ChainState& state);

// The checkpoint note text to sign for the current state (see checkpoint.h).
Result<std::string> CheckpointBody(std::string_view device_id, std::string_view node_id,
                                   const ChainState& state, std::string_view time);

// Appends a signature line to a note body (or to an already signed note). The signature is
// checked against `key` first: a signature that does not verify is never written. For ECDSA it
// must be DER (see EcdsaRawToDer for PKCS#11 output). The key name is the origin line.
Result<std::string> AttachSignature(std::string_view body_or_note, const PublicKey& key,
                                    std::string_view signature);

// Convenience for software keys: CheckpointBody's text signed with `key`.
Result<std::string> SignCheckpoint(std::string_view body, const PrivateKey& key);

// The checkpoint line for a signed note. Refuses a note that does not describe `state` (tree
// size, root, head) or is not signed by one of `keys`: the writer never logs a checkpoint the
// verifier would reject.
Result<ChainedLine> MakeCheckpointLine(std::string_view signed_note, const ChainState& state,
                                       std::span<const PublicKey> keys);

}  // namespace strongroom::audit
