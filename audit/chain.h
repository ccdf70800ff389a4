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
// Four kinds of line:
//   * records (Vault file-audit shaped: "time", "type" ("request"/"response"), "auth", "request",
//     "response", "error", ...): each is a Merkle leaf; leaf data = C, so the leaf hash is
//     SHA-256(0x00 || C). Leaf index = number of records before it (checkpoints do not count).
//   * checkpoints: exactly {"checkpoint","hash","prev_hash","seq","time","type":"checkpoint"},
//     where "checkpoint" is a signed note (checkpoint.h) over the records so far. Checkpoints are
//     chained like records but are not Merkle leaves (a checkpoint cannot cover itself). Newer
//     writers add a seventh member, "frontier": the hex hashes of the Merkle tree's compact range
//     (RFC 9162 subtree roots, largest first), from which a verifier can continue the tree when
//     it starts at this checkpoint instead of at seq 1 (the signed root checks them).
//   * MACs: exactly {"hash","mac","prev_hash","seq","time","type":"mac"}. The writer ends every
//     batch it makes durable with one: "mac" is hex HMAC-SHA256, under a key that never leaves
//     the writer's PKCS#11 token, of MacMessage(origin, seq, prev_hash, time). A verifier without
//     the key cannot check it; the writer checks it when it restarts, so that it folds into its
//     next signed checkpoint only lines it can prove it wrote. Not Merkle leaves.
//   * unproven markers: exactly {"bytes","hash","lines","moved_to","prev_hash","reason","seq",
//     "sha256","time","type":"unproven"}. At restart the writer keeps, of what follows its saved
//     state, only what a proof (a MAC it recomputes, or a checkpoint that verifies) covers. The
//     rest (appended by someone else while it was down, or a batch a power loss tore, which was
//     never acknowledged) it moves out of the log into the file "moved_to" ("lines" lines,
//     "bytes" bytes, hex SHA-256 "sha256") and records that with this line, which continues the
//     chain from the last proof. So nothing unproven is ever signed; the verifier reports every
//     marker, and a log with one is never "intact". Not Merkle leaves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "audit/keys.h"
#include "audit/merkle.h"
#include "audit/result.h"

namespace strongroom::audit {

inline constexpr std::string_view kCheckpointType = "checkpoint";
inline constexpr std::string_view kMacType = "mac";
inline constexpr std::string_view kUnprovenType = "unproven";
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
  bool is_mac = false;
  bool is_unproven = false;
  std::string note;                           // checkpoints only: the signed note
  std::optional<std::vector<Hash>> frontier;  // checkpoints that carry one
  Hash mac{};                                 // MAC lines only
  // Unproven markers only: what was moved out of the log, and where to.
  uint64_t removed_lines = 0;
  uint64_t removed_bytes = 0;
  Hash removed_sha256{};
  std::string moved_to;
  std::string reason;

  // Records are the Merkle leaves; checkpoints, MACs and unproven markers are not.
  bool is_leaf() const { return !is_checkpoint && !is_mac && !is_unproven; }
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
// The same for an already parsed record.
Result<ChainedLine> MakeChainedLine(Json record, const ChainState& state);

// A record rendered once into canonical form, before it is chained: its members ("key":value,
// comma-separated, in key order) cut where the chain's own members go. Chaining it is then two
// SHA-256 passes and a few copies, with no parsing: writers prepare records in the threads that
// make them and chain them in log order.
struct PreparedRecord {
  // Members whose keys sort before "hash", between "hash" and "prev_hash", between "prev_hash"
  // and "seq", and after "seq".
  std::string part[4];
  size_t bytes() const { return part[0].size() + part[1].size() + part[2].size() + part[3].size(); }
};

// Prepares a parsed record (the checks MakeChainedLine makes).
Result<PreparedRecord> PrepareRecord(const Json& record);
// Prepares a record from its top-level members: (key, value) pairs in any order, each value
// already in canonical form (json.h; the caller renders them). Refuses duplicate keys, the
// chain's own members, and a record without a string "type" (not a reserved one) and "time".
Result<PreparedRecord> PrepareRecord(std::vector<std::pair<std::string, std::string>> members);
// Chains a prepared record: the same line and state as MakeChainedLine of the record it was
// prepared from.
Result<ChainedLine> MakeChainedLine(const PreparedRecord& record, const ChainState& state);

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

// What a MAC line's "mac" authenticates: the line's own seq, prev_hash (which commits to every
// line before it) and time, under the log's origin.
std::string MacMessage(std::string_view origin, uint64_t seq, const Hash& prev_hash,
                       std::string_view time);

// The MAC line that follows `state`; `mac` is the HMAC of MacMessage(origin, state.last_seq + 1,
// state.last_hash, time), computed by the caller in its token.
Result<ChainedLine> MakeMacLine(const Hash& mac, std::string_view time, const ChainState& state);

// What an unproven marker records (its texts are capped: reason 1 KiB, moved_to 4 KiB).
struct RemovedTail {
  uint64_t lines = 0;
  uint64_t bytes = 0;
  Hash sha256{};
  std::string moved_to;
  std::string reason;
};
inline constexpr size_t kMaxMarkerReason = 1024;
inline constexpr size_t kMaxMarkerPath = 4096;

// The unproven marker that follows `state` (the last proof).
Result<ChainedLine> MakeUnprovenLine(const RemovedTail& removed, std::string_view time,
                                     const ChainState& state);

}  // namespace strongroom::audit
