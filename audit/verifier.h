// Offline verification of a strongroom audit log (format: chain.h, checkpoint.h).
//
// The verifier streams the files in the order given (oldest first; rotation continues the chain;
// gzip files are read transparently, log_reader.h) and checks, line by line:
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
//
// Verification starts at seq 1, or right after a signed checkpoint line given as the start
// (StartPoint, the CLI's --from-checkpoint): its "frontier" rebuilds the Merkle tree the
// checkpoint signed, so the files that follow it verify exactly as if every earlier file had been
// read — which is what lets old rotated files be archived elsewhere.
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
#include "audit/fast_line.h"
#include "audit/keys.h"

namespace strongroom::audit {

struct VerifiedCheckpoint {
  Checkpoint checkpoint;
  std::string note;
  uint64_t seq = 0;  // the checkpoint line's own seq
  std::string file;
  uint64_t line = 0;
};

// The state right after a signed checkpoint line, from which verification can continue.
struct StartPoint {
  VerifiedCheckpoint checkpoint;
  ChainState state;  // the checkpoint line's seq and hash; the tree rebuilt from its frontier
};

// Checks a checkpoint line (as copied from the end of a rotated file; a final newline is
// allowed) as a place to start: its own hash holds, it is signed by one of `keys`, it names the
// line before it as its head, and its "frontier" reproduces the signed tree size and root.
// `source` names where the line came from, for reports.
Result<StartPoint> OpenStartPoint(std::string_view line, std::span<const PublicKey> keys,
                                  std::string source);

struct VerifyOptions {
  // Trusted audit public keys (several during a key rotation). Must outlive the verifier.
  std::span<const PublicKey> keys;
  // Start after this checkpoint instead of at seq 1 (OpenStartPoint checked it).
  std::optional<StartPoint> start;
  // A signature-checked checkpoint (OpenCheckpoint) the log must contain or extend.
  std::optional<Checkpoint> trusted;
  // Fail when lines follow the last checkpoint (for closed or rotated-out logs).
  bool require_signed_tail = false;
  // Keep every leaf hash, the seq of every leaf and every checkpoint (for proofs), and check an
  // explicit RFC 9162 consistency proof between consecutive checkpoints.
  bool keep_leaves = false;
  // Keep the text of the line with this seq.
  std::optional<uint64_t> capture_seq;
  // VerifyFiles: threads that verify checkpoint-delimited segments at once (parallel_verify.h;
  // 1: one pass in order), and the size of the pieces plain files are cut into for them (0: the
  // default, 64 MiB; tests use tiny ones).
  unsigned threads = 1;
  uint64_t chunk_bytes = 0;
  // Check every line with the full parser (chain.h) only, never the fast path (fast_line.h):
  // for tests and benchmarks that compare the two.
  bool full_parser_only = false;
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
  uint64_t first_seq = 1;           // seq of the first line (after the start checkpoint, if any)
  std::optional<StartPoint> start;  // where verification started, when not at seq 1
  uint64_t lines = 0;               // chained lines verified (records and checkpoints)
  uint64_t bytes = 0;               // their bytes (decompressed), newlines included
  double seconds = 0;               // VerifyFiles: wall time, and the threads it used
  unsigned threads = 1;
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

  // keep_leaves only. With a start point, leaf_hashes[0] is leaf number start tree size.
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

  // Segments, for the parallel driver (parallel_verify.cc). A segment verifier checks the lines
  // that follow a checkpoint line another verifier checks, starting from the state that line
  // records (its seq and hash, the tree from its "frontier"); its line numbers count from that
  // line. `start` comes from the line alone: nothing of it is trusted until the verifier that
  // checks the line reaches the same state (SameState) and merges the segment (MergeSegment).
  // Call BeginSegment instead of BeginFile, on a verifier without options.start.
  void BeginSegment(const StartPoint& start, std::string file);
  bool SameState(const Verifier& segment) const;
  // Adopts a segment that verified without a break, as if this verifier had read its lines.
  void MergeSegment(Verifier&& segment);
  // Lines read in the current file (the line number of the last one).
  uint64_t line_in_file() const { return line_in_file_; }
  uint64_t fast_path_lines() const { return fast_path_lines_; }

 private:
  void Fail(std::string reason, Break::Kind kind = Break::Kind::kTamper);
  void FailAtEnd(std::string reason);
  // What the chain needs of a line that passed its own checks.
  struct LineFacts {
    uint64_t seq = 0;
    Hash hash{};
    std::string_view time;
    bool is_checkpoint = false;
    bool is_mac = false;
    bool is_unproven = false;
    Hash leaf{};  // records only
    bool is_leaf() const { return !is_checkpoint && !is_mac && !is_unproven; }
  };

  void VerifyCheckpointLine(const ChainedRecord& rec);
  void VerifyUnprovenLine(const ChainedRecord& rec);
  // Checks a not yet committed line against the trusted checkpoint.
  void CheckTrusted(const LineFacts& rec);
  // Adopts a line that passed every check.
  void Commit(const LineFacts& f, std::string_view line);

  VerifyOptions options_;
  FastLineChecker fast_;
  Report report_;
  std::string file_;
  uint64_t line_in_file_ = 0;
  bool trusted_root_seen_ = false;
  bool trusted_head_seen_ = false;
  // The trusted checkpoint is from before the start point, or contradicts it.
  bool trusted_before_start_ = false;
  bool trusted_contradicts_start_ = false;
  std::optional<std::string> first_unsigned_file_;
  uint64_t first_unsigned_line_ = 0;
  uint64_t fast_path_lines_ = 0;
  StartPoint segment_start_;  // BeginSegment's
};

// Reads and verifies `paths` in order (options.threads > 1: parallel_verify.h, same report).
// Unreadable files are failures of kind kIo.
Report VerifyFiles(std::span<const std::string> paths, const VerifyOptions& options);
// Feeds the lines of `path` that start in [begin, end) (content offsets; begin at a line start)
// into `verifier`, which has begun the file; a read error or an overlong line fails it there.
// Returns where the next line starts.
uint64_t FeedFileRange(const std::string& path, uint64_t begin, uint64_t end, Verifier* verifier);

}  // namespace strongroom::audit
