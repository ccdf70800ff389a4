// The snapshot archive: what `GET sys/storage/raft/snapshot` returns and `POST` restores. It holds
// the physical store's pairs as they are stored (barrier ciphertext, plus the keyring wrapped by
// the KEK and the seal configuration): no key material in the clear.
//
// Layout (integers big-endian):
//   "SRSNAP01" (8) | created unix seconds (u64) | count (u32)
//   count x { key length (u32) | key | value length (u32) | value }
//   MAC (32): HMAC-SHA256 over everything before it, keyed by MacKey(the snapshot's keyring)
//   SHA-256 (32) over everything before it
// Decode checks the SHA-256 first (a truncated or damaged file is refused before any other
// work), then every length against what is left; the MAC is checked by the caller once it has
// unwrapped the keyring the archive carries (VerifyMac), before anything is written.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::storage {

// The largest archive this appliance makes or accepts: the request and response travel between
// worker and broker as base64 in one IPC frame (32 MiB for a request), so 16 MiB of snapshot
// (21.4 MiB of base64) is the bound. A listener's max_request_size lowers it.
inline constexpr size_t kMaxSnapshotBytes = 16u << 20;
inline constexpr size_t kMaxSnapshotEntries = 4u << 20;

struct SnapshotArchive {
  int64_t created_unix = 0;
  std::vector<std::pair<std::string, std::string>> entries;  // in key order
};

// The MAC key for an archive: HMAC-SHA256(serialized keyring, "strongroom snapshot mac v1").
std::string SnapshotMacKey(std::span<const uint8_t> serialized_keyring);

std::string EncodeSnapshot(const SnapshotArchive& archive, std::string_view mac_key);

// Encodes an archive entry by entry (as EncodeSnapshot does), bounded: an entry that would take
// the archive (trailer included) past max_bytes, or its count past kMaxSnapshotEntries, is not
// added; Add answers false then and for every later call. So a store too large for a snapshot is
// found after at most max_bytes of work and memory, not after building all of it.
class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(int64_t created_unix, size_t max_bytes = kMaxSnapshotBytes);
  // True when added; false once the archive would pass a limit (nothing more is added).
  bool Add(std::string_view key, std::string_view value);
  bool over_limit() const { return over_limit_; }
  size_t entries() const { return count_; }
  // The archive's size so far, the trailer included.
  size_t bytes() const;
  size_t max_bytes() const { return max_bytes_; }
  // The whole archive (the count, MAC and checksum filled in). Not after over_limit().
  std::string Finish(std::string_view mac_key) &&;

 private:
  std::string out_;
  size_t max_bytes_;
  uint32_t count_ = 0;
  bool over_limit_ = false;
};
// Refuses (InvalidArgument, with why) anything that is not a whole, undamaged archive within
// kMaxSnapshotBytes / kMaxSnapshotEntries, or whose keys are not strictly increasing.
absl::StatusOr<SnapshotArchive> DecodeSnapshot(std::string_view bytes);
// Whether `bytes` (already decoded once) carries the MAC of `mac_key`; InvalidArgument if not.
absl::Status VerifySnapshotMac(std::string_view bytes, std::string_view mac_key);

}  // namespace strongroom::storage
