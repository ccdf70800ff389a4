#include "appliance/core/audit_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "appliance/core/json.h"
#include "appliance/core/seal.h"
#include "audit/checkpoint.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::core {

namespace {

std::string ErrnoText(int err) {
  char buf[128];
  return std::string(strerror_r(err, buf, sizeof buf));
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
  const int f =
      ::open(path.c_str(),
             O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
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
  return absl::OkStatus();
}

absl::Status AuditFile::OpenNew(absl::StatusCode code, std::string_view not_empty) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(OpenFdLocked());
  if (file_size_ != 0) {
    CloseFdLocked();
    return absl::Status(code,
                        absl::StrCat("audit file ", options_.path, " ", std::string(not_empty)));
  }
  state_ = durable_state_ = signed_state_ = audit::ChainState{};
  last_checkpoint_ = options_.clock();
  return absl::OkStatus();
}

// ---- Group commit ------------------------------------------------------------------------------

void AuditFile::BecomeWriterLocked(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return !writing_; });
  writing_ = true;
}

void AuditFile::ReleaseWriterLocked() {
  writing_ = false;
  cv_.notify_all();
}

void AuditFile::RollBackLocked(const absl::Status& why) {
  failures_.push_back(durable_state_.last_seq);
  last_failure_ = why;
  state_ = durable_state_;
  pending_.clear();
  if (signed_state_.last_seq > state_.last_seq) signed_state_ = state_;
}

absl::StatusOr<audit::ChainState> AuditFile::WriteBatchLocked(std::unique_lock<std::mutex>& lock) {
  std::string batch;
  batch.swap(pending_);
  const audit::ChainState target = state_;
  const int fd = fd_;
  const uint64_t start = file_size_;
  lock.unlock();
  // Outside the lock: appenders keep chaining onto `target` into pending_ for the next batch.
  absl::Status status;
  size_t done = 0;
  while (done < batch.size()) {
    const ssize_t n = ::write(fd, batch.data() + done, batch.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::UnavailableError(
          absl::StrCat("cannot write audit file ", options_.path, ": ", ErrnoText(errno)));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok() && ::fdatasync(fd) != 0) {
    status = absl::UnavailableError(
        absl::StrCat("cannot sync audit file ", options_.path, ": ", ErrnoText(errno)));
  }
  lock.lock();
  if (!status.ok()) {
    // Cut the batch back off (whole lines or nothing follow the last durable line), and fail
    // it and everything chained after it.
    if (done > 0 && ::ftruncate(fd, static_cast<off_t>(start)) != 0) {
      LogError("audit file %s: cannot cut off a failed batch: %s; closing it", options_.path,
               ErrnoText(errno));
      CloseFdLocked();
    }
    LogError("audit device %s: %s", options_.device_id, status.message());
    RollBackLocked(status);
    return status;
  }
  file_size_ = start + batch.size();
  durable_state_ = target;
  return target;
}

absl::Status AuditFile::FlushLocked(std::unique_lock<std::mutex>& lock) {
  if (pending_.empty()) return absl::OkStatus();
  const std::string time = Now(options_.clock);
  auto mac = options_.seal->AuditMac(
      audit::MacMessage(Origin(), state_.last_seq + 1, state_.last_hash, time));
  audit::Hash h{};
  if (mac.ok() && mac->size() == h.size()) std::memcpy(h.data(), mac->data(), h.size());
  auto line = mac.ok() && mac->size() == h.size() ? audit::MakeMacLine(h, time, state_)
                                                 : audit::Result<audit::ChainedLine>(
                                                       audit::Err("the token gave no MAC"));
  if (!mac.ok() || !line.ok()) {
    const absl::Status why = absl::UnavailableError(absl::StrCat(
        "audit device ", options_.device_id,
        ": cannot authenticate the batch: ", !mac.ok() ? mac.status().message() : line.message()));
    LogError("%s", why.message());
    RollBackLocked(why);
    return why;
  }
  pending_ += line->line;
  state_ = line->next;
  return WriteBatchLocked(lock).status();
}

absl::Status AuditFile::Append(audit::Json record) {
  std::unique_lock<std::mutex> lock(mu_);
  if (fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("audit file ", options_.path, " is not open"));
  }
  auto line = audit::MakeChainedLine(std::move(record), state_);
  if (!line.ok()) return absl::InternalError(absl::StrCat("audit record: ", line.message()));
  pending_ += line->line;
  state_ = line->next;
  const uint64_t seq = state_.last_seq;
  const size_t failures_seen = failures_.size();
  for (;;) {
    if (failures_.size() != failures_seen) {
      if (seq <= failures_[failures_seen]) break;  // durable before that batch failed
      return last_failure_;
    }
    if (durable_state_.last_seq >= seq) break;
    if (!writing_) {
      writing_ = true;
      const absl::Status s = FlushLocked(lock);
      ReleaseWriterLocked();
      if (!s.ok()) return s;
      continue;
    }
    cv_.wait(lock);
  }
  if (state_.tree.size() - signed_state_.tree.size() >= options_.checkpoint_entries) {
    BecomeWriterLocked(lock);
    if (state_.tree.size() - signed_state_.tree.size() >= options_.checkpoint_entries &&
        fd_ >= 0) {
      if (auto s = CheckpointAsWriterLocked(lock, false); !s.ok()) {
        LogError("audit device %s: checkpoint failed: %s", options_.device_id,
                 s.status().message());
      }
    }
    ReleaseWriterLocked();
  }
  return absl::OkStatus();
}

// ---- Checkpoints -------------------------------------------------------------------------------

absl::StatusOr<std::string> AuditFile::CheckpointAsWriterLocked(
    std::unique_lock<std::mutex>& lock, bool force) {
  if (fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("audit file ", options_.path, " is not open"));
  }
  if (!force && !HasUnsignedLocked()) return last_note_;
  // Never sign a head that does not extend the last signed one. The state only ever grows by
  // appending (or rolls back to a durable state at or after the signed one).
  if (state_.last_seq < signed_state_.last_seq ||
      state_.tree.size() < signed_state_.tree.size()) {
    return absl::InternalError("audit chain state went backwards; refusing to sign it");
  }
  const std::string time = Now(options_.clock);
  auto body = audit::CheckpointBody(options_.device_id, options_.node_id, state_, time);
  if (!body.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", body.message()));
  ASSIGN_OR_RETURN(std::string signature, options_.seal->AuditSign(*body));
  auto note = audit::AttachSignature(*body, options_.keys.front(), signature);
  if (!note.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", note.message()));
  auto line = audit::MakeCheckpointLine(*note, state_, options_.keys);
  if (!line.ok()) return absl::InternalError(absl::StrCat("checkpoint: ", line.message()));
  pending_ += line->line;
  state_ = line->next;
  ASSIGN_OR_RETURN(audit::ChainState signed_state, WriteBatchLocked(lock));
  signed_state_ = signed_state;
  last_checkpoint_ = options_.clock();
  last_note_ = *note;
  if (options_.save) RETURN_IF_ERROR(options_.save(signed_state_, file_size_, last_note_));
  return last_note_;
}

absl::StatusOr<std::string> AuditFile::Checkpoint(bool force) {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  auto note = CheckpointAsWriterLocked(lock, force);
  ReleaseWriterLocked();
  return note;
}

void AuditFile::CheckpointIfDue() {
  std::unique_lock<std::mutex> lock(mu_);
  if (fd_ < 0 || !HasUnsignedLocked()) return;
  if (options_.clock() - last_checkpoint_ < options_.checkpoint_interval) return;
  BecomeWriterLocked(lock);
  if (auto s = CheckpointAsWriterLocked(lock, false); !s.ok()) {
    LogError("audit device %s: checkpoint failed: %s", options_.device_id, s.status().message());
    last_checkpoint_ = options_.clock();  // retried after another interval, not every tick
  }
  ReleaseWriterLocked();
}

absl::Status AuditFile::Reopen() {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  // End the old file signed, then continue the chain in whatever the path names now.
  if (fd_ >= 0 && (HasUnsignedLocked() || !pending_.empty())) {
    if (auto s = CheckpointAsWriterLocked(lock, false); !s.ok()) {
      LogError("audit device %s: checkpoint before reopen failed: %s", options_.device_id,
               s.status().message());
    }
  }
  // Lines still pending (a failed checkpoint) were never written: they fail.
  if (!pending_.empty()) RollBackLocked(absl::UnavailableError("audit file reopened"));
  absl::Status s = OpenFdLocked();
  if (s.ok() && options_.save) s = options_.save(signed_state_, file_size_, last_note_);
  if (s.ok()) {
    LogInfo("audit device %s: reopened %s; the chain continues at seq %d", options_.device_id,
            options_.path, static_cast<int>(state_.last_seq + 1));
  }
  ReleaseWriterLocked();
  return s;
}

void AuditFile::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  BecomeWriterLocked(lock);
  if (fd_ >= 0 && (HasUnsignedLocked() || !pending_.empty())) {
    if (auto s = CheckpointAsWriterLocked(lock, false); !s.ok()) {
      LogError("audit device %s: final checkpoint failed: %s", options_.device_id,
               s.status().message());
    }
  }
  if (!pending_.empty()) RollBackLocked(absl::UnavailableError("audit file closed"));
  CloseFdLocked();
  ReleaseWriterLocked();
}

// ---- Recovery ----------------------------------------------------------------------------------

bool AuditFile::MacHolds(const audit::ChainedRecord& rec) {
  auto mac =
      options_.seal->AuditMac(audit::MacMessage(Origin(), rec.seq, rec.prev_hash, rec.time));
  if (!mac.ok()) {
    LogError("audit device %s: cannot check the MAC at seq %d: %s", options_.device_id,
             static_cast<int>(rec.seq), mac.status().message());
    return false;
  }
  return mac->size() == rec.mac.size() &&
         CRYPTO_memcmp(mac->data(), rec.mac.data(), rec.mac.size()) == 0;
}

bool AuditFile::CheckpointHolds(const audit::ChainedRecord& rec,
                                const audit::ChainState& before) const {
  auto cp = audit::OpenCheckpoint(rec.note, options_.keys);
  return cp.ok() && cp->Origin() == Origin() && cp->time == rec.time &&
         cp->head_seq == before.last_seq && cp->head_hash == before.last_hash &&
         cp->tree_size == before.tree.size() && cp->root == before.tree.Root();
}

absl::StatusOr<uint64_t> AuditFile::FoldTailLocked(uint64_t from) {
  const int rfd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (rfd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot read ", options_.path));
  {
    // The tail is read from the very file the device writes, not from whatever the path names
    // by now.
    struct stat ws {};
    struct stat rs {};
    if (::fstat(fd_, &ws) != 0 || ::fstat(rfd, &rs) != 0 || ws.st_dev != rs.st_dev ||
        ws.st_ino != rs.st_ino) {
      ::close(rfd);
      return absl::FailedPreconditionError(
          absl::StrCat("audit file ", options_.path, " changed while it was being opened"));
    }
  }
  std::string tail;
  char buf[65536];
  uint64_t pos = from;
  for (;;) {
    const ssize_t n = ::pread(rfd, buf, sizeof buf, static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    tail.append(buf, static_cast<size_t>(n));
    pos += static_cast<uint64_t>(n);
  }
  ::close(rfd);

  audit::ChainState proven = state_;  // after the last line a proof covers
  uint64_t folded = 0;
  size_t start = 0;
  while (start < tail.size()) {
    const size_t nl = tail.find('\n', start);
    if (nl == std::string::npos) {
      // A torn last line (crash mid-write): it was never acknowledged; cut it off so the chain
      // continues cleanly.
      LogWarn("audit device %s: cutting an incomplete last line (%d bytes) off %s",
              options_.device_id, static_cast<int>(tail.size() - start), options_.path);
      if (::ftruncate(fd_, static_cast<off_t>(from + start)) == 0) file_size_ = from + start;
      break;
    }
    auto rec = audit::ParseChainedLine(std::string_view(tail).substr(start, nl - start));
    if (!rec.ok() || rec->seq != state_.last_seq + 1 || rec->prev_hash != state_.last_hash) {
      LogError(
          "audit device %s: %s does not continue the chain at byte %d; new lines continue from "
          "seq %d (the verifier will report the break)",
          options_.device_id, options_.path, static_cast<int>(from + start),
          static_cast<int>(state_.last_seq));
      break;
    }
    const audit::ChainState before = state_;
    state_.last_seq = rec->seq;
    state_.last_hash = rec->hash;
    if (rec->is_leaf()) state_.tree.Append(audit::HashLeaf(rec->canonical));
    if (rec->is_mac && MacHolds(*rec)) proven = state_;
    if (rec->is_checkpoint) {
      if (CheckpointHolds(*rec, before)) {
        proven = state_;
        signed_state_ = state_;
        last_note_ = rec->note;
      } else {
        LogError("audit device %s: the checkpoint at seq %d in %s does not verify",
                 options_.device_id, static_cast<int>(rec->seq), options_.path);
      }
    }
    ++folded;
    start = nl + 1;
  }
  durable_state_ = state_;
  const uint64_t unproven_from = state_.last_seq > proven.last_seq ? proven.last_seq + 1 : 0;
  LogInfo(
      "audit device %s: %s continues at seq %d (%d lines after the last saved checkpoint, %d of "
      "them unproven)",
      options_.device_id, options_.path, static_cast<int>(state_.last_seq + 1),
      static_cast<int>(folded),
      static_cast<int>(unproven_from == 0 ? 0 : state_.last_seq - unproven_from + 1));
  return unproven_from;
}

absl::Status AuditFile::Resume(const AuditFileSaved& saved) {
  std::unique_lock<std::mutex> lock(mu_);
  state_ = durable_state_ = signed_state_ = saved.state;
  last_note_ = saved.note;
  last_checkpoint_ = options_.clock();
  RETURN_IF_ERROR(OpenFdLocked());
  // After a rotation the saved offset is the new file's start; a file shorter than it was
  // replaced or cut, and is read from its start (the chain check then finds where it breaks).
  const uint64_t from = saved.offset <= file_size_ ? saved.offset : 0;
  auto unproven_from = FoldTailLocked(from);
  if (!unproven_from.ok()) {
    CloseFdLocked();
    return unproven_from.status();
  }
  if (*unproven_from == 0) return absl::OkStatus();
  LogWarn(
      "audit device %s: seq %d..%d in %s were not written by this server, or not completely "
      "(no MAC or checkpoint of its own covers them); they are marked unproven",
      options_.device_id, static_cast<int>(*unproven_from), static_cast<int>(state_.last_seq),
      options_.path);
  auto marker = audit::MakeUnprovenLine(
      *unproven_from,
      "found after the last proof (MAC or checkpoint) when the server started: not proven to be "
      "written by it",
      Now(options_.clock), state_);
  if (!marker.ok()) return absl::InternalError(absl::StrCat("audit: ", marker.message()));
  pending_ += marker->line;
  state_ = marker->next;
  BecomeWriterLocked(lock);
  auto note = CheckpointAsWriterLocked(lock, /*force=*/true);
  ReleaseWriterLocked();
  return note.status();
}

}  // namespace strongroom::core
