// One audit device's log file: the hash chain of audit/chain.h, written durably in group-committed
// batches, each batch ended by a line that proves the broker wrote it, with signed checkpoints,
// and recovered at open only as far as those proofs hold.
//
// Durable before the answer: Append returns only once its line is on stable storage. Lines that
// arrive while a batch is being written wait in memory; the next writer takes them all as one
// batch, ends it with a MAC line (HMAC-SHA256 in the PKCS#11 token over the chain head, so over
// every line before it) or a checkpoint line, and issues one write() and one fdatasync() for
// the lot (group commit). A failed write or sync is cut back off the file and fails every line
// of the batch and of those chained after it; nothing is acknowledged that is not on disk.
//
// Nothing forged gets signed: at open, the lines after the last saved checkpoint are read back
// and the chain continues from them only up to the last proof found among them (a MAC line the
// token recomputes, or a checkpoint signed by the audit key that matches the chain). What
// follows that proof (appended by someone else while the daemon was down, or a batch torn by a
// power loss, never acknowledged) is moved to a file of its own and cut off the log, and an
// "unproven" marker line records it: the verifier reports it, never calls the log intact, and
// no signature ever covers it. Bytes appended while the daemon runs fail the next batch closed
// until Reopen runs the same recovery.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/chain.h"
#include "audit/json.h"
#include "audit/keys.h"

namespace strongroom::core {

class Seal;

struct AuditFileOptions {
  std::string path;
  mode_t mode = 0600;
  std::string device_id;  // the origin's components: strongroom-audit/<device_id>/<node_id>
  std::string node_id;
  // The audit public key(s): every checkpoint is checked against them before it is written,
  // and saved checkpoints found in the tail at open are accepted only if they verify.
  std::vector<audit::PublicKey> keys;
  Seal* seal = nullptr;  // signs checkpoints and computes MACs, inside the token
  std::function<absl::Time()> clock;
  uint64_t checkpoint_entries = 1000;  // records after which a checkpoint is written
  absl::Duration checkpoint_interval = absl::Seconds(60);
  // Called (with the file's lock held) once a checkpoint is on disk: the chain state, the file
  // offset just after the checkpoint line, and its signed note.
  std::function<absl::Status(const audit::ChainState&, uint64_t offset, const std::string& note)>
      save;
};

// What `save` stored, to continue a chain.
struct AuditFileSaved {
  audit::ChainState state;
  uint64_t offset = 0;
  std::string note;
};

class AuditFile {
 public:
  explicit AuditFile(AuditFileOptions options);
  ~AuditFile();
  AuditFile(const AuditFile&) = delete;
  AuditFile& operator=(const AuditFile&) = delete;

  // A new chain: opens the file, which must be empty; otherwise an error with `code` and the
  // text `not_empty`.
  absl::Status OpenNew(absl::StatusCode code, std::string_view not_empty);
  // Continues a saved chain: opens the file and folds in its tail after `saved` (see above).
  // An error leaves the file closed: appends fail until Reopen (SIGHUP) retries the recovery.
  absl::Status Resume(const AuditFileSaved& saved);

  // Chains `record` (a JSON object with "type" and "time") and returns once it is durable.
  absl::Status Append(audit::Json record);
  // Signs a checkpoint over everything appended so far; with `force` also when nothing is
  // unsigned (the test write of a new device). Returns its signed note.
  absl::StatusOr<std::string> Checkpoint(bool force = false);
  // A checkpoint when lines are unsigned and checkpoint_interval has passed since the last one.
  void CheckpointIfDue();
  // SIGHUP: ends the current file with a checkpoint, then continues the chain in the file the
  // path names now (logrotate moved the old one away) and saves the state for it.
  absl::Status Reopen();
  // Ends the file with a checkpoint (if anything is unsigned) and closes it.
  void Close();

  const std::string& path() const { return options_.path; }
  audit::ChainState state() const;

 private:
  absl::Status OpenFdLocked();
  void CloseFdLocked();
  std::string Origin() const;
  // Waits until no batch is being written, then takes the writer's role.
  void BecomeWriterLocked(std::unique_lock<std::mutex>& lock);
  void ReleaseWriterLocked();
  // Writer only: writes pending_ (which ends with a MAC or checkpoint line) and syncs it,
  // without the lock held. Returns the state the batch ends at; on failure rolls back.
  absl::StatusOr<audit::ChainState> WriteBatchLocked(std::unique_lock<std::mutex>& lock);
  // Writer only: ends pending_ with a MAC line and writes it.
  absl::Status FlushLocked(std::unique_lock<std::mutex>& lock);
  // Writer only: ends pending_ with a checkpoint line and writes it.
  absl::StatusOr<std::string> CheckpointAsWriterLocked(std::unique_lock<std::mutex>& lock,
                                                       bool force);
  // Discards lines not yet durable after a failure; their appenders get `why`.
  void RollBackLocked(const absl::Status& why);
  // Resume with the lock held: opens the file, keeps what the proofs cover, moves the rest out.
  absl::Status ResumeLocked(std::unique_lock<std::mutex>& lock);
  // Reads the tail from `from` (streaming, a line at a time) and advances state_ over every
  // line a proof covers; returns the file offset just after the last proof.
  absl::StatusOr<uint64_t> FoldProvenLocked(uint64_t from);
  // Moves the bytes after `proven_end` to a new file next to the log, cuts them off the log,
  // and chains an unproven marker (and a checkpoint) when whole lines went.
  absl::Status RemoveUnprovenLocked(std::unique_lock<std::mutex>& lock, uint64_t proven_end);
  enum class Proof { kHolds, kFails, kError };
  Proof MacHolds(const audit::ChainedRecord& rec);
  bool CheckpointHolds(const audit::ChainedRecord& rec, const audit::ChainState& before) const;
  bool HasUnsignedLocked() const { return state_.last_seq != signed_state_.last_seq; }

  const AuditFileOptions options_;

  mutable std::mutex mu_;  // everything below
  std::condition_variable cv_;
  int fd_ = -1;
  uint64_t file_size_ = 0;           // bytes durably written (the next batch starts here)
  audit::ChainState state_;          // after the last line chained (pending ones included)
  audit::ChainState durable_state_;  // after the last line on disk
  audit::ChainState signed_state_;   // as of the last checkpoint line
  std::string pending_;              // chained lines waiting for the next batch
  bool writing_ = false;             // a writer holds the file (a batch is in flight)
  // One entry per failed batch: the last durable seq when it failed. Appenders remember how
  // many failures they saw; a line chained before failure g survived it iff its seq is at most
  // failures_[g].
  std::vector<uint64_t> failures_;
  absl::Status last_failure_;
  absl::Time last_checkpoint_;
  std::string last_note_;
  // The state saved at the last checkpoint; until `resumed_`, appends are refused and Reopen
  // retries the recovery from it (a file that could not be opened, an HSM that failed).
  AuditFileSaved saved_;
  bool resumed_ = false;
};

}  // namespace strongroom::core
