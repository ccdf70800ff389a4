// strongroom audit checkpoints: c2sp.org/tlog-checkpoint notes over the audit log's Merkle tree,
// with two extension lines binding the hash chain and the time.
//
//   strongroom-audit/<device_id>/<node_id>      origin
//   <tree size>                                  number of Merkle leaves (non-checkpoint lines)
//   <base64 root hash>                           RFC 6962 root over those leaves
//   head <seq> <hex hash>                        the line just before the checkpoint line
//   time <timestamp>                             when the checkpoint was made (RFC 3339, UTC)
//
//   — strongroom-audit/<device_id>/<node_id> <base64(key ID || signature)>
//
// The signing key's name is the origin line. Exactly these five lines, in this order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "audit/encoding.h"
#include "audit/keys.h"
#include "audit/result.h"

namespace strongroom::audit {

inline constexpr std::string_view kOriginPrefix = "strongroom-audit/";

struct Checkpoint {
  std::string device_id;
  std::string node_id;
  uint64_t tree_size = 0;
  Hash root{};
  uint64_t head_seq = 0;  // 0: no line before the checkpoint (a checkpoint of the empty log)
  Hash head_hash{};       // all zeros when head_seq is 0
  std::string time;

  std::string Origin() const;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// Device and node IDs: 1-128 characters of [A-Za-z0-9._-].
bool IsValidIdComponent(std::string_view id);
// Timestamps: 1-64 characters of [0-9A-Za-z:.+-] (RFC 3339 text, checked only for charset).
bool IsValidTimestamp(std::string_view time);

// The note text to sign (final newline included). Fails on invalid IDs or time.
Result<std::string> FormatCheckpointText(const Checkpoint& checkpoint);
Result<Checkpoint> ParseCheckpointText(std::string_view text);

// Parses a signed checkpoint note and checks that it is signed by one of `keys` under the key
// name equal to its origin line (see VerifyNoteSignatures).
Result<Checkpoint> OpenCheckpoint(std::string_view note, std::span<const PublicKey> keys);

}  // namespace strongroom::audit
