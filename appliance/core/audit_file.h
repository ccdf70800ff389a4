// One audit device's log file: the hash chain of audit/chain.h, written durably in group-committed
// batches, each batch ended by a line that proves the broker wrote it, with signed checkpoints,
// and recovered at open only as far as those proofs hold.
//
// Durable before the answer: Append returns only once its line is on stable storage. Appenders
// hand in records already rendered (audit::PreparedRecord) and queue them under a short lock;
// one of them at a time is the writer. The writer takes every queued record as one batch,
// chains them in queue order (so the chain's order is the file's), ends the batch with a MAC
// line (HMAC-SHA256 in the PKCS#11 token over the chain head, so over every line before it) or,
// when one is due, a checkpoint line, and issues one write() and one fdatasync() for the lot
// (group commit). Chaining, the token call, the write and the sync all happen outside the lock:
// records arriving meanwhile queue for the next batch. Once the batch is synced the writer wakes
// exactly the appenders of that batch (they share one futex word, so one system call wakes them
// all) and hands the writer's role to one appender of the next batch, if records are queued. A
// failed write or sync is cut back off the file and fails every record of the batch; nothing is
// acknowledged that is not on disk.
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

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
  // Called by the writer (the role held, not the file's lock) once a checkpoint is on disk: the
  // chain state, the file offset just after the checkpoint line, and its signed note.
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

  // Queues `record` and returns once it is durable (or failed with its batch).
  absl::Status Append(audit::PreparedRecord record);
  // The same for a parsed record (a JSON object with "type" and "time").
  absl::Status Append(const audit::Json& record);
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
  // Records queued for the next batch (diagnostics and tests).
  size_t queued() const;

 private:
  // The next batch, as its appenders wait for it: one futex word for all of them, so that the
  // writer wakes a whole batch with one system call. Shared by the appenders and the file, so
  // that the writer may still touch it after the appenders have returned.
  struct Batch {
    static constexpr uint32_t kWaiting = 0;   // nobody asleep on the word
    static constexpr uint32_t kSleeping = 1;  // someone may be asleep on it
    static constexpr uint32_t kDone = 2;      // written or failed: `status` and `failed` are set
    static constexpr uint32_t kLead = 3;      // the writer's role is offered to one appender
    std::atomic<uint32_t> state{kWaiting};
    absl::Status status;
    // Records of the batch that failed on their own (index in the batch, why).
    std::vector<std::pair<size_t, absl::Status>> failed;
    // Sets kDone or kLead and wakes every appender (kDone) or one (kLead) if any sleeps.
    void Wake(uint32_t to);
    // Until the state is kDone or kLead; returns it. No spinning: on a machine with few cores
    // the writer needs the CPU the appenders would spin on.
    uint32_t Wait();
    // An offered role, taken by one appender (false when another took it first).
    bool Claim();
    absl::Status StatusOf(size_t index) const;
  };

  absl::Status OpenFdLocked();
  void CloseFdLocked();
  std::string Origin() const;
  // Waits until the record at `index` of `batch` is durable or failed; writes the batch when
  // handed the writer's role.
  absl::Status Await(const std::shared_ptr<Batch>& batch, size_t index);
  // Waits until no one holds the writer's role, then takes it (checkpoints, rotation, closing).
  void BecomeWriterLocked(std::unique_lock<std::mutex>& lock);
  // Gives the role up: to an appender of the queued records if any wait and no one else asked
  // for it, otherwise frees it.
  void ReleaseWriterLocked();
  // Writer only: takes every queued record, chains them after `marker` (an unproven marker,
  // when given), ends the batch with a checkpoint line (when `checkpoint`, or when one is due)
  // or a MAC line, writes and syncs it, and completes the batch's appenders. The lock is
  // released while the batch is made and written. Returns the checkpoint's signed note, or ""
  // when the batch ended with a MAC line (or was empty). With `checkpoint` and `force`, a
  // checkpoint is written even when nothing is unsigned.
  absl::StatusOr<std::string> WriteBatchLocked(std::unique_lock<std::mutex>& lock, bool checkpoint,
                                               bool force,
                                               const audit::RemovedTail* marker = nullptr);
  // The checkpoint line after `state`, signed now.
  absl::StatusOr<audit::ChainedLine> MakeCheckpointLine(const audit::ChainState& state,
                                                        std::string* note);
  // The MAC line after `state`.
  absl::StatusOr<audit::ChainedLine> MakeMacLine(const audit::ChainState& state);
  // Writes `batch` at `start` and syncs it; on failure cuts it back off (or closes the file).
  absl::Status WriteAndSync(int fd, uint64_t start, const std::string& batch, bool* close);
  // Resume with the lock and the writer's role held: opens the file, keeps what the proofs
  // cover, moves the rest out.
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
  bool HasUnsignedLocked() const {
    return state_.last_seq != signed_state_.last_seq || !queue_.empty();
  }

  const AuditFileOptions options_;

  mutable std::mutex mu_;       // everything below
  std::condition_variable cv_;  // the writer's role was freed (for BecomeWriterLocked)
  int fd_ = -1;
  uint64_t file_size_ = 0;                    // bytes durably written (the next batch starts here)
  audit::ChainState state_;                   // after the last line on disk
  audit::ChainState signed_state_;            // as of the last checkpoint line
  std::vector<audit::PreparedRecord> queue_;  // records of the next batch, in arrival order
  std::shared_ptr<Batch> next_;               // their appenders' batch (null when none queued)
  bool writing_ = false;                      // someone holds the writer's role
  int role_wanted_ = 0;                       // threads waiting in BecomeWriterLocked
  absl::Time last_checkpoint_;
  std::string last_note_;
  // The state saved at the last checkpoint; until `resumed_`, Reopen retries the recovery from
  // it (a file that could not be opened, an HSM that failed).
  AuditFileSaved saved_;
  bool resumed_ = false;
};

}  // namespace strongroom::core
