// What a Raft log entry and a snapshot of the replicated store hold: storage batches of barrier
// ciphertext (the barrier sits above this layer, so nothing here is plaintext). Entries come from
// the leader over mutual TLS, snapshots from the leader or the local disk; both are still decoded
// as untrusted bytes: every length is checked against what is left.
//
//   batch    = "SRB1" u32:count  count * op  zero bytes up to a multiple of 8 (libraft wants
//              8-byte multiples)
//   op       = u8:kind(1 put, 2 delete) u32:key_len key [u32:value_len value]   (value: puts only)
//   snapshot = "SRS1" u64:count  count * (u32:key_len key u32:value_len value)
// Integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "appliance/storage/storage.h"

namespace strongroom::raft {

std::string EncodeBatch(const std::vector<storage::BatchOp>& ops);
// A batch in two steps, for the writes the Raft loop joins into one log entry: each write's ops
// encoded on its own thread (EncodeOps), then one batch of all of them, in order (JoinBatch
// writes JoinedBatchSize bytes): the same bytes EncodeBatch gives for all their ops, so any
// version decodes it. At most 2^32 - 1 ops in all.
struct EncodedOps {
  std::string bytes;  // the ops, without the batch's header and padding
  uint32_t count = 0;
};
EncodedOps EncodeOps(const std::vector<storage::BatchOp>& ops);
size_t JoinedBatchSize(const std::vector<const EncodedOps*>& parts);
void JoinBatch(const std::vector<const EncodedOps*>& parts, char* out);
absl::StatusOr<std::vector<storage::BatchOp>> DecodeBatch(std::string_view bytes);

// Builds a snapshot pair by pair, in pieces of about `piece_bytes` each (0: one piece; a pair is
// never split), so a large store is held once, in pieces, and never as one growing buffer that
// is copied again when it outgrows itself.
class SnapshotWriter {
 public:
  explicit SnapshotWriter(size_t piece_bytes = 0);
  // With `on_piece` (and piece_bytes), every piece but the first and the last is handed over as
  // soon as it is full, in order, and not kept here (the first holds the count, patched in at
  // the end): FinishPieces then returns the first and the last.
  SnapshotWriter(size_t piece_bytes, std::function<void(std::string&&)> on_piece);
  void Add(std::string_view key, std::string_view value);
  // The finished snapshot (the count is patched in), as one string or as its pieces in order.
  std::string Finish() &&;
  std::vector<std::string> FinishPieces() &&;

 private:
  size_t piece_bytes_;
  std::function<void(std::string&&)> on_piece_;
  std::vector<std::string> pieces_;
  uint64_t count_ = 0;
};

// Calls `each` for every pair of a snapshot, in order; stops at the first error.
absl::Status DecodeSnapshot(
    std::string_view bytes,
    const std::function<absl::Status(std::string_view key, std::string_view value)>& each);

}  // namespace strongroom::raft
