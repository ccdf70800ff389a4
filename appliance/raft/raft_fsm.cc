// RaftStorage's state machine: libraft's raft_fsm callbacks (apply, the three steps of a
// snapshot, restore), over the node's RocksDB store.
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "appliance/raft/log_codec.h"
#include "appliance/raft/raft_storage_impl.h"
#include "appliance/raft/spill.h"
#include "base/log.h"

namespace strongroom::raft {
namespace {

struct SnapshotWork {
  uv_work_t req{};
  void* arg = nullptr;
  void (*work)(void*) = nullptr;
  void (*done)(void*) = nullptr;
};

}  // namespace

// A failure is final here (Fail): the node's storage stops, and its owner stops the node. It
// is never reported to libraft: 0.22.1 only stops applying at such an entry (its write would
// wait forever), and on a follower that was handling an append it frees the received batch
// a second time (legacy.c recvCb; a crash). libraft counts the entry, and every later one,
// as applied while this store no longer follows the log; so once failed nothing is read from
// it, nothing is applied to it, and no snapshot is taken of it (FsmSnapshot).
int RaftStorage::Impl::FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  auto* self = static_cast<Impl*>(fsm->data);
  *result = &not_applied;
  if (self->failed.load()) return 0;
  const uint64_t index = raft_last_applied(&self->raft) + 1;
  {
    std::unique_lock<std::mutex> lock(self->restore_mu);
    if (self->restoring) {
      // A follower's result goes nowhere: the entry is applied in its turn after the restore.
      if (raft_state(&self->raft) != RAFT_LEADER && self->held_bytes + buf->len <= kMaxHeldBytes) {
        self->held.push_back({index, std::string(static_cast<const char*>(buf->base), buf->len)});
        self->held_bytes += buf->len;
        *result = nullptr;
        return 0;
      }
      self->restore_cv.wait(lock, [&] { return !self->restoring; });
    }
  }
  if (self->failed.load()) return 0;  // the restore failed meanwhile
  // No restore under way: everything libraft counts applied is in the store (after a restore,
  // up to the snapshot's index, which no entry applied here named).
  self->StoreIndexReached(index - 1);
  if (!self->ApplyEntry(index, std::string_view(static_cast<const char*>(buf->base), buf->len))) {
    return 0;
  }
  *result = nullptr;
  return 0;
}

bool RaftStorage::Impl::ApplyEntry(uint64_t index, std::string_view bytes) {
  auto ops = DecodeBatch(bytes);
  if (!ops.ok()) {
    Fail(absl::StrCat("the state machine cannot apply log entry ", index,
                      " (malformed: ", ops.status().ToString(), ")"));
    return false;
  }
  bool tables[kTables] = {};
  NoteWritten(index, *ops, tables);  // before the store changes: a read check sees it either way
  if (options.before_store) options.before_store(index);
  absl::Status s = fsm_db->Apply(*ops);
  if (!s.ok()) {
    Fail(absl::StrCat("the state machine cannot apply log entry ", index, ": ", s.ToString()));
    return false;
  }
  TablesStored(tables);
  StoreIndexReached(index);
  return true;
}

void RaftStorage::Impl::NoteWritten(uint64_t index, const std::vector<storage::BatchOp>& ops,
                                    bool (&tables)[kTables]) {
  Written w;
  w.index = index;
  // A key and each of its prefixes ending in '/': counted first, so that a writer of deep paths
  // cannot make every node keep megabytes per entry (kReadCheckEntryHashes, kReadCheckHashes).
  size_t hashes = 0;
  for (const storage::BatchOp& op : ops) {
    hashes += 1 + static_cast<size_t>(std::count(op.key.begin(), op.key.end(), '/'));
  }
  w.all = hashes > kReadCheckEntryHashes;
  for (const storage::BatchOp& op : ops) {
    const std::string_view key = op.key;
    tables[options.table_of ? std::min(options.table_of(key), kTables - 1) : 1] = true;
    if (w.all) continue;
    w.keys.push_back(std::hash<std::string_view>{}(key));
    for (size_t slash = key.find('/'); slash != std::string_view::npos;
         slash = key.find('/', slash + 1)) {
      w.prefixes.push_back(std::hash<std::string_view>{}(key.substr(0, slash + 1)));
    }
  }
  if (w.all) hashes = 0;
  for (unsigned t = 1; t < kTables; ++t) {
    if (tables[t]) table_epochs[t].fetch_add(1);
  }
  std::lock_guard<std::mutex> lock(written_mu);
  written.push_back(std::move(w));
  written_hashes += hashes;
  while (written.size() > kReadCheckEntries || written_hashes > kReadCheckHashes) {
    written_floor = written.front().index;
    written_hashes -= written.front().keys.size() + written.front().prefixes.size();
    written.pop_front();
  }
}

void RaftStorage::Impl::NoteReplaced() {
  for (auto& epoch : table_epochs) epoch.fetch_add(1);
  std::lock_guard<std::mutex> lock(written_mu);
  ++restores;
  written.clear();
  written_hashes = 0;
}

// A snapshot is taken in three steps (libraft with patch 0004, fsm version 3): FsmSnapshot
// pins the store's current state on the loop thread (a RocksDB snapshot: no copy),
// FsmSnapshotAsync writes it out in pieces of kSnapshotPieceBytes on a libuv pool thread while
// the loop goes on (heartbeats, elections, applies), and FsmSnapshotFinalize drops both once
// libraft has written them. The pieces stay here, not copied into libraft's memory: the store
// is held once, never as one buffer, and every piece but the first and the last in a
// file-backed buffer (spill.h), so a store larger than the free RAM can be snapshotted. libraft
// takes at most one snapshot at a time.
RaftStorage::Impl::Piece RaftStorage::Impl::Spilled(std::string&& bytes) {
  Piece p;
  if (void* to = SpillAlloc(bytes.size()); to != nullptr) {
    std::memcpy(to, bytes.data(), bytes.size());
    p.spilled = to;
    p.spilled_len = bytes.size();
  } else {
    p.bytes = std::move(bytes);
  }
  return p;
}
void RaftStorage::Impl::ClearPieces() {
  for (Piece& p : snapshot_pieces) {
    if (p.spilled != nullptr) SpillFree(p.spilled);
  }
  snapshot_pieces.clear();
  snapshot_pieces.shrink_to_fit();
  snapshot_bufs.clear();
}

int RaftStorage::Impl::FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<Impl*>(fsm->data);
  *bufs = nullptr;
  *n_bufs = 0;
  // A failed store lags the index libraft would write the snapshot under (FsmApply).
  if (self->failed.load()) return RAFT_IOERR;
  {
    // Not while a received snapshot is being restored: libraft tries again at a later apply.
    std::lock_guard<std::mutex> lock(self->restore_mu);
    if (self->restoring) return RAFT_BUSY;
  }
  self->snapshot_view = self->fsm_db->Pin();
  return 0;
}

// Off the loop (or on it, should the runner refuse): touches only the view and the pieces.
int RaftStorage::Impl::FsmSnapshotAsync(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<Impl*>(fsm->data);
  self->ClearPieces();
  self->snapshot_pieces.emplace_back();  // the first piece, which the count is patched into
  SnapshotWriter w(kSnapshotPieceBytes, [self](std::string&& piece) {
    self->snapshot_pieces.push_back(Spilled(std::move(piece)));
  });
  absl::Status s = self->snapshot_view->Scan([&](std::string_view k, std::string_view v) {
    w.Add(k, v);
    return true;
  });
  if (!s.ok()) {
    LogError("raft: cannot take a snapshot: %s", s.ToString());
    // libraft's on-loop fallback does not finalize a snapshot that failed here: unpin now.
    self->ClearPieces();
    self->snapshot_view.reset();
    return RAFT_IOERR;
  }
  std::vector<std::string> ends = std::move(w).FinishPieces();  // the first (and the last)
  self->snapshot_pieces[0].bytes = std::move(ends[0]);
  for (size_t i = 1; i < ends.size(); ++i) {
    self->snapshot_pieces.push_back(Spilled(std::move(ends[i])));
  }
  self->snapshot_bufs.clear();
  for (Piece& piece : self->snapshot_pieces) {
    self->snapshot_bufs.push_back(piece.spilled != nullptr
                                      ? raft_buffer{piece.spilled, piece.spilled_len}
                                      : raft_buffer{piece.bytes.data(), piece.bytes.size()});
  }
  *bufs = self->snapshot_bufs.data();
  *n_bufs = static_cast<unsigned>(self->snapshot_bufs.size());
  return 0;
}

// libraft is done with the snapshot (written, failed or given up).
int RaftStorage::Impl::FsmSnapshotFinalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<Impl*>(fsm->data);
  self->ClearPieces();
  self->snapshot_view.reset();
  *bufs = nullptr;
  *n_bufs = 0;
  return 0;
}

// The runner libraft calls to take FsmSnapshotAsync off the loop: libuv's thread pool, then
// `done` back on this node's loop (which runs until every queued work has come back, also
// while closing).
int RaftStorage::Impl::RunSnapshotWork(struct raft* r, void* arg, void (*work)(void*),
                                       void (*done)(void*)) {
  auto* self = static_cast<Impl*>(r->data);
  auto* w = new SnapshotWork;
  w->req.data = w;
  w->arg = arg;
  w->work = work;
  w->done = done;
  const int rv = uv_queue_work(
      &self->loop, &w->req,
      [](uv_work_t* req) {
        auto* sw = static_cast<SnapshotWork*>(req->data);
        sw->work(sw->arg);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<SnapshotWork> sw(static_cast<SnapshotWork*>(req->data));
        sw->done(sw->arg);
      });
  if (rv != 0) delete w;
  return rv;
}

// libraft hands the buffer over on success. At start (raft_start, before the loop runs) the
// snapshot is restored here; one received from the leader is restored on restore_thread while
// the loop goes on (WaitRestored), and one received during that restore after it, in turn.
int RaftStorage::Impl::FsmRestore(raft_fsm* fsm, raft_buffer* buf) {
  auto* self = static_cast<Impl*>(fsm->data);
  if (self->failed.load()) {  // as FsmApply: taken, not applied
    raft_free(buf->base);
    return 0;
  }
  const raft_buffer taken = *buf;
  if (!self->raft_started) {
    self->Restore(taken);
    return 0;
  }
  {
    std::lock_guard<std::mutex> lock(self->restore_mu);
    if (self->restoring) {
      HeldEntry e;
      e.snapshot = taken;
      self->held.push_back(std::move(e));
      return 0;
    }
    self->restoring = true;
  }
  // The last restore's thread has finished (it set `restoring` off as its last step).
  if (self->restore_thread.joinable()) self->restore_thread.join();
  try {
    self->restore_thread = std::thread([self, taken] {
      if (self->options.before_restore) self->options.before_restore();
      self->Restore(taken);
      self->ApplyHeld();
    });
  } catch (const std::system_error& e) {
    LogWarn("raft: cannot start a thread to restore the snapshot (%s); restoring it on the loop",
            e.what());
    self->Restore(taken);
    self->ApplyHeld();
  }
  return 0;
}

// The snapshot is checked whole first (nothing is changed for a malformed one), then written
// into the emptied store in batches of about kSnapshotPieceBytes, so the store is not held a
// second time as one batch.
void RaftStorage::Impl::Restore(raft_buffer buf) {
  NoteReplaced();  // before the store changes (also when the snapshot turns out malformed)
  const std::string_view bytes(static_cast<const char*>(buf.base), buf.len);
  absl::Status s =
      DecodeSnapshot(bytes, [](std::string_view, std::string_view) { return absl::OkStatus(); });
  if (s.ok()) s = fsm_db->Clear();
  std::vector<storage::BatchOp> batch;
  size_t batch_bytes = 0;
  if (s.ok()) {
    s = DecodeSnapshot(bytes, [&](std::string_view k, std::string_view v) {
      batch.push_back(storage::BatchOp::Put(std::string(k), std::string(v)));
      batch_bytes += k.size() + v.size();
      if (batch_bytes < kSnapshotPieceBytes) return absl::OkStatus();
      absl::Status applied = fsm_db->Apply(batch);
      batch.clear();
      batch_bytes = 0;
      return applied;
    });
  }
  if (s.ok() && !batch.empty()) s = fsm_db->Apply(batch);
  if (!s.ok()) {
    // The store may be half cleared: it follows the log no more. Not reported to libraft,
    // as in FsmApply (a restore can run while a follower handles an append).
    Fail(absl::StrCat("the state machine cannot restore a snapshot: ", s.ToString()));
  } else {
    bool all[kTables];
    std::fill(std::begin(all), std::end(all), true);
    TablesStored(all);  // NoteReplaced counted it in every table
  }
  raft_free(buf.base);
}

void RaftStorage::Impl::ApplyHeld() {
  for (;;) {
    HeldEntry e;
    {
      std::lock_guard<std::mutex> lock(restore_mu);
      if (held.empty() || failed.load()) {
        for (HeldEntry& dropped : held) {
          if (dropped.snapshot.base != nullptr) raft_free(dropped.snapshot.base);
        }
        held.clear();
        held_bytes = 0;
        restoring = false;
        restore_cv.notify_all();
        return;
      }
      e = std::move(held.front());
      held.pop_front();
      held_bytes -= e.bytes.size();
    }
    if (e.snapshot.base != nullptr) {
      if (options.before_restore) options.before_restore();
      Restore(e.snapshot);
    } else {
      ApplyEntry(e.index, e.bytes);  // a failure is final (Fail): the rest is dropped above
    }
  }
}

}  // namespace strongroom::raft
