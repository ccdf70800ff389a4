#include "appliance/core/audit_file.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "appliance/core/json.h"
#include "appliance/core/seal.h"
#include "audit/checkpoint.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"

namespace strongroom::core {

namespace {

std::string ErrnoText(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof buf));
}

// After a file is created or renamed, its directory entry is durable only once the directory
// is synced.
void SyncParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  if (::fsync(dfd) != 0) LogWarn("audit: cannot sync directory %s: %s", dir, ErrnoText(errno));
  ::close(dfd);
}

// Time as the audit records write it.
std::string Now(const std::function<absl::Time()>& clock) { return FormatRfc3339Nano(clock()); }

}  // namespace

AuditFile::AuditFile(AuditFileOptions options) : options_(std::move(options)) {}

AuditFile::~AuditFile() {
  std::lock_guard<std::mutex> lock(mu_);
  CloseFdLocked();
}

std::string AuditFile::Origin() const {
  audit::Checkpoint cp;
  cp.device_id = options_.device_id;
  cp.node_id = options_.node_id;
  return cp.Origin();
}

audit::ChainState AuditFile::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

size_t AuditFile::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void AuditFile::CloseFdLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Opens the path for appending without following a symlink (O_NOFOLLOW) and without blocking on
// a FIFO (O_NONBLOCK, cleared afterwards), then checks before changing anything: a regular file,
// owned by this process's user, with no permission beyond 0640. Only then is its mode set to the
// configured one. A file that fails a check is left as it was: the daemon never "repairs" a file
// that others may already hold open.
absl::Status AuditFile::OpenFdLocked() {
  CloseFdLocked();
  const std::string& path = options_.path;
  const int f = ::open(
      path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
      options_.mode);
  if (f < 0) {
    const int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat("audit file ", path, " is a symbolic link; name the file itself"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open audit file ", path, ": ", ErrnoText(err)));
  }
  const auto refuse = [&](std::string why) {
    ::close(f);
    return absl::FailedPreconditionError(absl::StrCat("audit file ", path, " ", why));
  };
  struct stat st {};
  if (::fstat(f, &st) != 0) return refuse(absl::StrCat("cannot be checked: ", ErrnoText(errno)));
  if (!S_ISREG(st.st_mode)) return refuse("is not a regular file");
  if (st.st_uid != ::geteuid()) {
    return refuse(
        absl::StrCat("is owned by uid ", st.st_uid, ", not by this server's uid ", ::geteuid()));
  }
  const mode_t perms = st.st_mode & 07777;
  if ((perms & ~mode_t{0640}) != 0) {
    return refuse(absl::StrFormat(
        "has mode %04o, which grants more than 0640; fix or replace the file (chmod 0600)",
        static_cast<unsigned>(perms)));
  }
  const int flags = ::fcntl(f, F_GETFL);
  if (flags < 0 || ::fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return refuse(absl::StrCat("cannot be set to blocking writes: ", ErrnoText(errno)));
  }
  if (perms != options_.mode && ::fchmod(f, options_.mode) != 0) {
    return refuse(absl::StrFormat("cannot be set to mode %04o: %s",
                                  static_cast<unsigned>(options_.mode), ErrnoText(errno)));
  }
  fd_ = f;
  file_size_ = static_cast<uint64_t>(st.st_size);
  SyncParentDirectory(path);
  return absl::OkStatus();
}

absl::Status AuditFile::OpenNew(absl::StatusCode code, std::string_view not_empty) {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  absl::Status s = OpenFdLocked();
  if (s.ok() && file_size_ != 0) {
    CloseFdLocked();
    s = absl::Status(code, absl::StrCat("audit file ", options_.path, " ", std::string(not_empty)));
  }
  if (s.ok()) {
    state_ = signed_state_ = audit::ChainState{};
    saved_ = AuditFileSaved{};
    last_checkpoint_ = options_.clock();
    resumed_ = true;
  }
  ReleaseWriterLocked();
  return s;
}

// ---- Group commit ------------------------------------------------------------------------------

namespace {

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

}  // namespace

void AuditFile::Batch::Wake(uint32_t to) {
  if (state.exchange(to, std::memory_order_acq_rel) == kSleeping) {
    Futex(&state, FUTEX_WAKE_PRIVATE, to == kDone ? INT32_MAX : 1);
  }
}

uint32_t AuditFile::Batch::Wait() {
  for (;;) {
    uint32_t s = state.load(std::memory_order_acquire);
    if (s == kWaiting) {
      if (!state.compare_exchange_strong(s, kSleeping, std::memory_order_acq_rel)) continue;
      s = kSleeping;
    }
    if (s != kSleeping) return s;
    // Returns at once if the state moved on meanwhile (EAGAIN), or on a wake or a signal.
    Futex(&state, FUTEX_WAIT_PRIVATE, kSleeping);
  }
}

bool AuditFile::Batch::Claim() {
  // Back to "someone may sleep": the others still do, and the batch's end must wake them.
  uint32_t lead = kLead;
  return state.compare_exchange_strong(lead, kSleeping, std::memory_order_acq_rel);
}

absl::Status AuditFile::Batch::StatusOf(size_t index) const {
  for (const auto& [i, why] : failed) {
    if (i == index) return why;
  }
  return status;
}

void AuditFile::BecomeWriterLocked(std::unique_lock<std::mutex>& lock) {
  ++role_wanted_;
  cv_.wait(lock, [&] { return !writing_; });
  --role_wanted_;
  writing_ = true;
}

void AuditFile::ReleaseWriterLocked() {
  if (!queue_.empty() && role_wanted_ == 0) {
    // One of the queued records' appenders writes the next batch (which holds its record).
    next_->Wake(Batch::kLead);
    return;
  }
  // Free: a thread in BecomeWriterLocked takes it (and hands queued records on when it is
  // done), or the next appender does.
  writing_ = false;
  if (role_wanted_ > 0) cv_.notify_all();
}

absl::Status AuditFile::Await(const std::shared_ptr<Batch>& batch, size_t index) {
  for (;;) {
    const uint32_t state = batch->Wait();
    if (state == Batch::kDone) return batch->StatusOf(index);
    if (!batch->Claim()) continue;
    // The writer's role: this batch is the queued one, so the batch written now is it.
    std::unique_lock<std::mutex> lock(mu_);
    (void)WriteBatchLocked(lock, /*checkpoint=*/false, /*force=*/false);
    ReleaseWriterLocked();
  }
}

absl::Status AuditFile::Append(audit::PreparedRecord record) {
  std::shared_ptr<Batch> batch;
  size_t index = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (fd_ < 0) {
      return absl::UnavailableError(absl::StrCat("audit file ", options_.path, " is not open"));
    }
    if (!next_) next_ = std::make_shared<Batch>();
    batch = next_;
    index = queue_.size();
    queue_.push_back(std::move(record));
    if (!writing_) {
      // No batch in flight: this appender writes one now (its own record is in it).
      writing_ = true;
      (void)WriteBatchLocked(lock, /*checkpoint=*/false, /*force=*/false);
      ReleaseWriterLocked();
    }
  }
  return Await(batch, index);
}

absl::Status AuditFile::Append(const audit::Json& record) {
  auto prepared = audit::PrepareRecord(record);
  if (!prepared.ok()) {
    return absl::InternalError(absl::StrCat("audit record: ", prepared.message()));
  }
  return Append(std::move(prepared).value());
}

absl::StatusOr<audit::ChainedLine> AuditFile::MakeMacLine(const audit::ChainState& state) {
  const std::string time = Now(options_.clock);
  auto mac = options_.seal->AuditMac(
      audit::MacMessage(Origin(), state.last_seq + 1, state.last_hash, time));
  audit::Hash h{};
  if (mac.ok() && mac->size() != h.size()) mac = absl::InternalError("the token gave no MAC");
  if (!mac.ok()) return mac.status();
  std::memcpy(h.data(), mac->data(), h.size());
  auto line = audit::MakeMacLine(h, time, state);
  if (!line.ok()) return absl::InternalError(line.message());
  return std::move(line).value();
}

absl::StatusOr<audit::ChainedLine> AuditFile::MakeCheckpointLine(const audit::ChainState& state,
                                                                 std::string* note) {
  const std::string time = Now(options_.clock);
  auto body = audit::CheckpointBody(options_.device_id, options_.node_id, state, time);
  if (!body.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", body.message()));
  ASSIGN_OR_RETURN(std::string signature, options_.seal->AuditSign(*body));
  auto signed_note = audit::AttachSignature(*body, options_.keys.front(), signature);
  if (!signed_note.ok()) {
    return absl::InternalError(absl::StrCat("checkpoint: ", signed_note.message()));
  }
  auto line = audit::MakeCheckpointLine(*signed_note, state, options_.keys);
  if (!line.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", line.message()));
  *note = *std::move(signed_note);
  return std::move(line).value();
}

absl::Status AuditFile::WriteAndSync(int fd, uint64_t start, const std::string& batch,
                                     bool* close) {
  absl::Status status;
  size_t done = 0;
  // Bytes that someone else appended would sit between our lines: the file is checked first.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != start) {
    status = absl::DataLossError(absl::StrCat(
        "audit file ", options_.path, " was changed outside the server (", st.st_size,
        " bytes, expected ", start, "); nothing more is written to it until it is reopened"));
  }
  while (status.ok() && done < batch.size()) {
    const ssize_t n = ::write(fd, batch.data() + done, batch.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = absl::UnavailableError(absl::StrCat("cannot write audit file ", options_.path, ": ",
                                                   n < 0 ? ErrnoText(errno) : "no space"));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok()) {
    const metrics::ScopedTimer timer(metrics::Get().audit_fsync);
    if (::fdatasync(fd) != 0) {
      status = absl::UnavailableError(
          absl::StrCat("cannot sync audit file ", options_.path, ": ", ErrnoText(errno)));
    }
  }
  if (status.ok()) return status;
  // Cut the batch back off: whole lines or nothing follow the last durable line.
  if (done > 0 && ::ftruncate(fd, static_cast<off_t>(start)) != 0) {
    LogError("audit file %s: cannot cut off a failed batch: %s; closing it", options_.path,
             ErrnoText(errno));
    *close = true;
  }
  if (absl::IsDataLoss(status)) *close = true;
  return status;
}

absl::StatusOr<std::string> AuditFile::WriteBatchLocked(std::unique_lock<std::mutex>& lock,
                                                        bool checkpoint, bool force,
                                                        const audit::RemovedTail* marker) {
  std::vector<audit::PreparedRecord> batch;
  batch.swap(queue_);
  std::shared_ptr<Batch> waiting;
  waiting.swap(next_);
  const auto complete = [&waiting](const absl::Status& status) {
    if (!waiting) return;
    waiting->status = status;
    waiting->Wake(Batch::kDone);
  };
  if (fd_ < 0) {
    const absl::Status why =
        absl::UnavailableError(absl::StrCat("audit file ", options_.path, " is not open"));
    complete(why);
    return why;
  }
  const audit::ChainState start = state_;
  const uint64_t unsigned_entries =
      start.tree.size() - signed_state_.tree.size() + static_cast<uint64_t>(batch.size());
  const bool anything_unsigned =
      start.last_seq != signed_state_.last_seq || !batch.empty() || marker != nullptr;
  const bool sign = (checkpoint && (force || anything_unsigned)) ||
                    (unsigned_entries >= options_.checkpoint_entries && anything_unsigned);
  const int fd = fd_;
  const uint64_t at = file_size_;
  lock.unlock();

  // Outside the lock: appenders queue their records for the next batch meanwhile.
  audit::ChainState next = start;
  std::string bytes;
  size_t records = 0;
  absl::Status status;
  if (marker != nullptr) {
    auto line = audit::MakeUnprovenLine(*marker, Now(options_.clock), next);
    if (!line.ok()) status = absl::InternalError(absl::StrCat("audit: ", line.message()));
    if (line.ok()) {
      bytes += line->line;
      next = std::move(line->next);
    }
  }
  for (size_t i = 0; i < batch.size() && status.ok(); ++i) {
    auto line = audit::MakeChainedLine(batch[i], next);
    if (!line.ok()) {
      // This record only (it cannot be written: too long, say); the others go on.
      waiting->failed.emplace_back(
          i, absl::InternalError(absl::StrCat("audit record: ", line.message())));
      continue;
    }
    bytes += line->line;
    next = std::move(line->next);
    ++records;
  }
  std::string note;
  absl::Status sign_status;
  if (status.ok() && sign) {
    auto line = MakeCheckpointLine(next, &note);
    if (line.ok()) {
      bytes += line->line;
      next = std::move(line->next);
    } else {
      sign_status = line.status();
      note.clear();
      LogError("audit device %s: checkpoint failed: %s", options_.device_id, sign_status.message());
    }
  }
  if (status.ok() && note.empty() && !bytes.empty()) {
    // No checkpoint ends this batch: a MAC line proves it.
    auto line = MakeMacLine(next);
    if (line.ok()) {
      bytes += line->line;
      next = std::move(line->next);
    } else {
      status = absl::UnavailableError(
          absl::StrCat("audit device ", options_.device_id,
                       ": cannot authenticate the batch: ", line.status().message()));
      LogError("%s", status.message());
    }
  }
  bool close = false;
  if (status.ok() && !bytes.empty()) status = WriteAndSync(fd, at, bytes, &close);

  lock.lock();
  if (!status.ok()) {
    metrics::Get().audit_sink_failure.Add();
    if (close) CloseFdLocked();
    if (fd_ < 0) resumed_ = false;  // Reopen runs the recovery again
    LogError("audit device %s: %s", options_.device_id, status.message());
    lock.unlock();
    complete(status);
    lock.lock();
    return status;
  }
  file_size_ = at + bytes.size();
  state_ = next;
  if (!note.empty()) {
    signed_state_ = next;
    last_checkpoint_ = options_.clock();
    last_note_ = note;
  }
  lock.unlock();
  metrics::Get().audit_records.Add(records);  // durable
  metrics::Get().audit_bytes.Add(bytes.size());
  complete(absl::OkStatus());
  absl::Status saved;
  if (!note.empty() && options_.save) saved = options_.save(next, at + bytes.size(), note);
  lock.lock();
  if (!note.empty() && saved.ok()) saved_ = AuditFileSaved{next, at + bytes.size(), note};
  if (checkpoint) {
    if (!sign_status.ok()) return sign_status;
    RETURN_IF_ERROR(saved);
    return sign ? note : last_note_;
  }
  if (!saved.ok()) {
    LogError("audit device %s: the checkpoint's state was not saved: %s", options_.device_id,
             saved.message());
  }
  return note;
}

// ---- Checkpoints -------------------------------------------------------------------------------

absl::StatusOr<std::string> AuditFile::Checkpoint(bool force) {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  auto note = WriteBatchLocked(lock, /*checkpoint=*/true, force);
  ReleaseWriterLocked();
  return note;
}

void AuditFile::CheckpointIfDue() {
  std::unique_lock<std::mutex> lock(mu_);
  if (fd_ < 0 || !HasUnsignedLocked()) return;
  if (options_.clock() - last_checkpoint_ < options_.checkpoint_interval) return;
  BecomeWriterLocked(lock);
  if (fd_ >= 0) {
    if (auto s = WriteBatchLocked(lock, /*checkpoint=*/true, /*force=*/false); !s.ok()) {
      last_checkpoint_ = options_.clock();  // retried after another interval, not every tick
    }
  }
  ReleaseWriterLocked();
}

absl::Status AuditFile::Reopen() {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  if (!resumed_) {
    // The recovery never completed (or the file was changed under us): run it again, now.
    absl::Status s = ResumeLocked(lock);
    if (s.ok()) {
      LogInfo("audit device %s: reopened %s (recovered); the chain continues at seq %d",
              options_.device_id, options_.path, static_cast<int>(state_.last_seq + 1));
    }
    ReleaseWriterLocked();
    return s;
  }
  // End the old file signed, then continue the chain in whatever the path names now. If the
  // old file cannot be ended signed, the device keeps writing it (a file switched without its
  // checkpoint would leave its tail unproven at the next restart).
  if (fd_ >= 0 && HasUnsignedLocked()) {
    if (auto s = WriteBatchLocked(lock, /*checkpoint=*/true, /*force=*/false); !s.ok()) {
      ReleaseWriterLocked();
      return absl::UnavailableError(absl::StrCat(
          "checkpoint before reopen failed (still writing the old file): ", s.status().message()));
    }
  }
  absl::Status s = OpenFdLocked();
  if (s.ok() && options_.save) s = options_.save(signed_state_, file_size_, last_note_);
  if (s.ok()) {
    saved_ = AuditFileSaved{signed_state_, file_size_, last_note_};
    LogInfo("audit device %s: reopened %s; the chain continues at seq %d", options_.device_id,
            options_.path, static_cast<int>(state_.last_seq + 1));
  } else {
    resumed_ = false;
  }
  ReleaseWriterLocked();
  return s;
}

void AuditFile::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  if (fd_ >= 0 && HasUnsignedLocked()) {
    // Errors are logged by the batch.
    (void)WriteBatchLocked(lock, /*checkpoint=*/true, /*force=*/false);
  }
  CloseFdLocked();
  // Whatever queued during the last batch finds the file closed.
  ReleaseWriterLocked();
}

// ---- Recovery ----------------------------------------------------------------------------------

AuditFile::Proof AuditFile::MacHolds(const audit::ChainedRecord& rec) {
  auto mac = options_.seal->AuditMac(audit::MacMessage(Origin(), rec.seq, rec.prev_hash, rec.time));
  if (!mac.ok()) {
    LogError("audit device %s: cannot check the MAC at seq %d: %s", options_.device_id,
             static_cast<int>(rec.seq), mac.status().message());
    return Proof::kError;
  }
  return mac->size() == rec.mac.size() &&
                 CRYPTO_memcmp(mac->data(), rec.mac.data(), rec.mac.size()) == 0
             ? Proof::kHolds
             : Proof::kFails;
}

bool AuditFile::CheckpointHolds(const audit::ChainedRecord& rec,
                                const audit::ChainState& before) const {
  auto cp = audit::OpenCheckpoint(rec.note, options_.keys);
  return cp.ok() && cp->Origin() == Origin() && cp->time == rec.time &&
         cp->head_seq == before.last_seq && cp->head_hash == before.last_hash &&
         cp->tree_size == before.tree.size() && cp->root == before.tree.Root() &&
         (!rec.frontier || *rec.frontier == before.tree.nodes());
}

absl::StatusOr<uint64_t> AuditFile::FoldProvenLocked(uint64_t from) {
  // The tail is read from the very file the device writes, not from whatever the path names.
  const int rfd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (rfd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot read ", options_.path));
  struct stat ws {};
  struct stat rs {};
  if (::fstat(fd_, &ws) != 0 || ::fstat(rfd, &rs) != 0 || ws.st_dev != rs.st_dev ||
      ws.st_ino != rs.st_ino) {
    ::close(rfd);
    return absl::FailedPreconditionError(
        absl::StrCat("audit file ", options_.path, " changed while it was being opened"));
  }
  // Streams the tail a line at a time (memory: one chunk and one line of at most 16 MiB).
  // Every proof costs at most one token operation, and the walk stops at the first line that
  // does not chain, is too long, or carries a proof that fails: nothing after it can be proven.
  audit::ChainState proven = state_;
  uint64_t proven_end = from;
  uint64_t lines = 0;
  std::string chunk(1 << 20, '\0');
  std::string line;
  uint64_t pos = from;
  uint64_t line_start = from;
  bool stop = false;
  absl::Status error;
  while (!stop) {
    const ssize_t n = ::pread(rfd, chunk.data(), chunk.size(), static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = absl::UnavailableError(
          absl::StrCat("cannot read audit file ", options_.path, ": ", ErrnoText(errno)));
      break;
    }
    if (n == 0) break;
    std::string_view data(chunk.data(), static_cast<size_t>(n));
    pos += static_cast<uint64_t>(n);
    while (!data.empty() && !stop) {
      const size_t nl = data.find('\n');
      const std::string_view part = data.substr(0, nl);
      if (line.size() + part.size() > audit::kMaxLineBytes) {
        stop = true;  // no line of ours is this long
        break;
      }
      line.append(part);
      if (nl == std::string_view::npos) break;
      data.remove_prefix(nl + 1);
      const uint64_t line_end = line_start + line.size() + 1;
      auto rec = audit::ParseChainedLine(line);
      if (!rec.ok() || rec->seq != state_.last_seq + 1 || rec->prev_hash != state_.last_hash) {
        LogError("audit device %s: %s does not continue the chain at byte %d", options_.device_id,
                 options_.path, static_cast<int>(line_start));
        stop = true;
        break;
      }
      const audit::ChainState before = state_;
      state_.last_seq = rec->seq;
      state_.last_hash = rec->hash;
      if (rec->is_leaf()) state_.tree.Append(audit::HashLeaf(rec->canonical));
      ++lines;
      bool holds = false;
      if (rec->is_mac) {
        const Proof p = MacHolds(*rec);
        if (p == Proof::kError) {
          error = absl::UnavailableError(
              "the token could not check the audit log's MACs; the device stays closed until "
              "it can (SIGHUP retries)");
          stop = true;
          break;
        }
        holds = p == Proof::kHolds;
        if (!holds) {
          LogError("audit device %s: the MAC at seq %d in %s does not verify", options_.device_id,
                   static_cast<int>(rec->seq), options_.path);
          stop = true;
        }
      } else if (rec->is_checkpoint) {
        holds = CheckpointHolds(*rec, before);
        if (holds) {
          signed_state_ = state_;
          last_note_ = rec->note;
        } else {
          LogError("audit device %s: the checkpoint at seq %d in %s does not verify",
                   options_.device_id, static_cast<int>(rec->seq), options_.path);
          stop = true;
        }
      }
      if (holds) {
        proven = state_;
        proven_end = line_end;
      }
      line.clear();
      line_start = line_end;
    }
  }
  ::close(rfd);
  RETURN_IF_ERROR(error);
  LogInfo(
      "audit device %s: %s continues at seq %d (%d lines after the last saved checkpoint, "
      "%d of them proven)",
      options_.device_id, options_.path, static_cast<int>(proven.last_seq + 1),
      static_cast<int>(lines), static_cast<int>(proven.last_seq - saved_.state.last_seq));
  state_ = proven;
  if (signed_state_.last_seq > proven.last_seq) signed_state_ = proven;
  return proven_end;
}

absl::Status AuditFile::RemoveUnprovenLocked(std::unique_lock<std::mutex>& lock,
                                             uint64_t proven_end) {
  if (proven_end >= file_size_) return absl::OkStatus();
  // A new file next to the log (never an existing one, never through a link), holding exactly
  // the bytes cut off, for whoever investigates.
  std::string moved_to;
  int qfd = -1;
  const std::string stamp =
      absl::FormatTime("%Y%m%dT%H%M%SZ", options_.clock(), absl::UTCTimeZone());
  for (int i = 0; i < 100 && qfd < 0; ++i) {
    moved_to = absl::StrCat(options_.path, ".unproven-", stamp, i == 0 ? "" : absl::StrCat("-", i));
    qfd = ::open(moved_to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (qfd < 0 && errno != EEXIST) break;
  }
  if (qfd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", moved_to, " for the unproven tail: ", ErrnoText(errno)));
  }
  const int rfd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  audit::RemovedTail removed;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok = rfd >= 0 && sha && EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) == 1;
  std::string chunk(1 << 20, '\0');
  for (uint64_t pos = proven_end; ok && pos < file_size_;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), file_size_ - pos));
    const ssize_t n = ::pread(rfd, chunk.data(), want, static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    const size_t got = static_cast<size_t>(n);
    for (size_t i = 0; i < got; ++i) removed.lines += chunk[i] == '\n';
    ok = EVP_DigestUpdate(sha.get(), chunk.data(), got) == 1;
    for (size_t done = 0; ok && done < got;) {
      const ssize_t w = ::write(qfd, chunk.data() + done, got - done);
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      if (ok) done += static_cast<size_t>(w);
    }
    pos += got;
    removed.bytes += got;
  }
  unsigned int len = 0;
  ok = ok && EVP_DigestFinal_ex(sha.get(), removed.sha256.data(), &len) == 1 &&
       len == removed.sha256.size() && ::fdatasync(qfd) == 0;
  if (rfd >= 0) ::close(rfd);
  ::close(qfd);
  if (!ok) {
    return absl::UnavailableError(
        absl::StrCat("cannot copy the unproven tail of ", options_.path, " to ", moved_to));
  }
  SyncParentDirectory(moved_to);
  if (::ftruncate(fd_, static_cast<off_t>(proven_end)) != 0 || ::fdatasync(fd_) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot cut the unproven tail off ", options_.path, ": ", ErrnoText(errno)));
  }
  file_size_ = proven_end;
  LogWarn(
      "audit device %s: %d bytes (%d whole lines) after the last proof in %s were not written by "
      "this server, or not completely; moved to %s (they are marked unproven)",
      options_.device_id, static_cast<int>(removed.bytes), static_cast<int>(removed.lines),
      options_.path, moved_to);
  if (removed.lines == 0) return absl::OkStatus();  // half a line: nothing of the chain went
  removed.moved_to = moved_to;
  removed.reason =
      "found after the last proof (MAC or checkpoint) when the server started: not proven to be "
      "written by it, so moved out of the log";
  // The marker, then a checkpoint straight away (the caller holds the writer's role).
  return WriteBatchLocked(lock, /*checkpoint=*/true, /*force=*/true, &removed).status();
}

absl::Status AuditFile::ResumeLocked(std::unique_lock<std::mutex>& lock) {
  state_ = signed_state_ = saved_.state;
  last_note_ = saved_.note;
  last_checkpoint_ = options_.clock();
  absl::Status s = OpenFdLocked();
  if (s.ok()) {
    // After a rotation the saved offset is the new file's start; a file shorter than it was
    // replaced or cut, and is read from its start (where the chain check stops at once).
    const uint64_t from = saved_.offset <= file_size_ ? saved_.offset : 0;
    auto proven_end = FoldProvenLocked(from);
    s = proven_end.ok() ? RemoveUnprovenLocked(lock, *proven_end) : proven_end.status();
  }
  if (!s.ok()) {
    // Nothing is appended until the recovery succeeds: a device that continued here would sign
    // whatever it had not yet moved out.
    CloseFdLocked();
    state_ = signed_state_ = saved_.state;
    return s;
  }
  resumed_ = true;
  return absl::OkStatus();
}

absl::Status AuditFile::Resume(const AuditFileSaved& saved) {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  saved_ = saved;
  absl::Status s = ResumeLocked(lock);
  ReleaseWriterLocked();
  return s;
}

}  // namespace strongroom::core
