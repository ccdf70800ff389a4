// Offline verification of a strongroom audit log (format: chain.h, checkpoint.h).
//
// The verifier streams the files in the order given (oldest first; rotation continues the chain)
// and checks, line by line:
//   * every line is complete, canonical JSON whose "hash" covers its content;
//   * "seq" counts up from 1 without gaps and "prev_hash" is the previous line's "hash";
//   * every checkpoint is signed by a trusted key under the log's origin, names the line before
//     it as its head, and its tree size and root equal the Merkle tree recomputed from the
//     records before it — so every checkpoint is consistent with every earlier one (a log never
//     shows an inconsistent head);
//   * unproven markers (chain.h: tails the writer could not prove and moved out) are reported
//     (Report::unproven), and a log with one is never "intact";
//   * optionally, a checkpoint fetched earlier from the live service ("trusted") is contained in
//     or extended by the log, which catches a cut tail or an older copy;
// and stops at the first line that breaks, naming file, line number and sequence number.
// Memory is O(log n) unless the proof tools ask for the leaf hashes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/encoding.h"
#include "audit/keys.h"

namespace strongroom::audit {

struct VerifyOptions {
  // Trusted audit public keys (several during a key rotation). Must outlive the verifier.
  std::span<const PublicKey> keys;
  // A signature-checked checkpoint (OpenCheckpoint) the log must contain or extend.
  std::optional<Checkpoint> trusted;
  // Fail when lines follow the last checkpoint (for closed or rotated-out logs).
  bool require_signed_tail = false;
  // Keep every leaf hash, the seq of every leaf and every checkpoint (for proofs), and check an
  // explicit RFC 9162 consistency proof between consecutive checkpoints.
  bool keep_leaves = false;
  // Keep the text of the line with this seq.
  std::optional<uint64_t> capture_seq;
};

struct Break {
  enum class Kind { kTamper, kIo };
  Kind kind = Kind::kTamper;
  std::string file;
  uint64_t line = 0;  // 1-based line number within `file`; one past the end for end-of-log
  uint64_t seq = 0;   // the sequence number expected at that position
  std::string reason;

  // "file:line: seq N: reason"
  std::string ToString() const;
};

struct VerifiedCheckpoint {
  Checkpoint checkpoint;
  std::string note;
  uint64_t seq = 0;  // the checkpoint line's own seq
  std::string file;
  uint64_t line = 0;
};

// A tail the writer found after its last proof at a restart, could not prove it wrote, and
// moved out of the log (chain.h, unproven markers).
struct UnprovenTail {
  uint64_t marker_seq = 0;
  std::string file;  // where the marker line is
  uint64_t marker_line = 0;
  uint64_t lines = 0;
  uint64_t bytes = 0;
  std::string sha256;  // hex
  std::string moved_to;
  std::string reason;
};

struct Report {
  std::optional<Break> failure;
  bool ok() const { return !failure.has_value(); }

  uint64_t files = 0;
  uint64_t lines = 0;        // chained lines verified (records and checkpoints)
  uint64_t entries = 0;      // records verified (Merkle leaves)
  uint64_t checkpoints = 0;  // checkpoints verified
  std::string first_time;    // "time" of the first and last verified line
  std::string last_time;
  std::string origin;  // the log's checkpoint origin, once known
  std::optional<VerifiedCheckpoint> last_checkpoint;
  uint64_t macs = 0;            // MAC lines (the writer's batch ends; see chain.h)
  uint64_t unsigned_lines = 0;  // verified lines after the last checkpoint (chained, unsigned)
  // Unproven tails the writer removed (the first 1,000 kept). A log with any is never reported
  // intact: someone wrote to it, or a power loss tore a batch.
  std::vector<UnprovenTail> unproven;
  uint64_t unproven_markers = 0;
  uint64_t unproven_lines = 0;  // lines those markers say were removed
  bool proven() const { return unproven_markers == 0; }
  bool trusted_matched = false;
  ChainState state;  // after the last verified line: a writer resumes from here

  // keep_leaves only.
  std::vector<Hash> leaf_hashes;
  std::vector<uint64_t> leaf_seqs;
  std::vector<VerifiedCheckpoint> all_checkpoints;
  // capture_seq only.
  std::optional<std::string> captured_line;
};

class Verifier {
 public:
  explicit Verifier(VerifyOptions options);

  void BeginFile(std::string name);
  // One line without its '\n'; `terminated` says whether the '\n' was there.
  void AddLine(std::string_view line, bool terminated);
  // The next line cannot be used at all (too long, unreadable): counts it and fails there.
  void FailLine(Break::Kind kind, std::string reason);
  // Splits `data` (one whole file's contents) into lines and adds them.
  void AddFileContents(std::string_view data);
  bool failed() const { return report_.failure.has_value(); }
  // End-of-log checks; call once, last.
  Report Finish();

 private:
  void Fail(std::string reason, Break::Kind kind = Break::Kind::kTamper);
  void FailAtEnd(std::string reason);
  void VerifyCheckpointLine(const ChainedRecord& rec);
  void VerifyUnprovenLine(const ChainedRecord& rec);
  // Checks a not yet committed line against the trusted checkpoint; `leaf` is its leaf hash.
  void CheckTrusted(const ChainedRecord& rec, const Hash& leaf);

  VerifyOptions options_;
  Report report_;
  std::string file_;
  uint64_t line_in_file_ = 0;
  bool trusted_root_seen_ = false;
  bool trusted_head_seen_ = false;
  std::optional<std::string> first_unsigned_file_;
  uint64_t first_unsigned_line_ = 0;
};

// Reads and verifies `paths` in order. Unreadable files are failures of kind kIo.
Report VerifyFiles(std::span<const std::string> paths, const VerifyOptions& options);

}  // namespace strongroom::audit
