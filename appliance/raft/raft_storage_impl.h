// RaftStorage's insides, shared by raft_storage.cc (the node: loop, requests, membership) and
// raft_fsm.cc (the state machine). Not part of the module's interface.
#ifndef STRONGROOM_APPLIANCE_RAFT_RAFT_STORAGE_IMPL_H_
#define STRONGROOM_APPLIANCE_RAFT_RAFT_STORAGE_IMPL_H_

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "appliance/raft/libraft.h"
#include "appliance/raft/log_codec.h"
#include "appliance/raft/loop_inbox.h"
#include "appliance/raft/raft_storage.h"
#include "appliance/storage/rocksdb_storage.h"
#include "base/log.h"

namespace strongroom::raft {

// libraft's error `rv` for `what`, in the status a caller maps to Vault's answer.
absl::Status RaftError(int rv, std::string_view what);
// What a caller gets once the state machine has failed (RaftStorage::Failure() has the reason;
// the detail stays in the log).
absl::Status FailedStorage();
// A wait that ran out: Vault's words for it. The request may still be applied later.
absl::Status TimedOut(std::string_view what, absl::Duration timeout);

struct RaftStorage::Impl {
  RaftOptions options;
  std::unique_ptr<storage::RocksDbStorage> fsm_db;
  uv_loop_t loop{};
  LoopInbox inbox;
  std::unique_ptr<TlsTransport> transport;
  raft_io io{};
  raft_fsm fsm{};
  struct raft raft {};
  std::thread thread;
  bool loop_ready = false;
  bool io_ready = false;
  bool raft_ready = false;
  bool raft_started = false;  // raft_start returned (later restores are snapshots received)

  // Runs `fn` on the loop thread and waits for it to return. False, with `fn` not run (and never
  // to run), once the loop is stopping or when it does not take the call up within kLoopTimeout.
  bool RunOnLoop(const std::function<void()>& fn) {
    struct Call {
      std::mutex mu;
      std::condition_variable cv;
      const std::function<void()>* fn = nullptr;  // valid until `abandoned` or `done`
      bool done = false;
      bool abandoned = false;
    };
    auto call = std::make_shared<Call>();
    call->fn = &fn;
    if (!inbox.Post([call] {
          std::lock_guard<std::mutex> lock(call->mu);
          if (call->abandoned) return;
          (*call->fn)();
          call->done = true;
          call->cv.notify_all();
        })) {
      return false;
    }
    std::unique_lock<std::mutex> lock(call->mu);
    const auto timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(kLoopTimeout));
    if (call->cv.wait_for(lock, timeout, [&] { return call->done; })) return true;
    call->abandoned = true;  // `fn` has not started (it runs holding `mu`) and now never will
    LogError("raft: the Raft loop did not take a call up within %s",
             absl::FormatDuration(kLoopTimeout));
    return false;
  }

  // The state machine stopped following the log (RaftStorage::Failure). Loop thread.
  std::atomic<bool> failed{false};
  std::mutex failure_mu;
  std::string failure;  // guarded by failure_mu

  void Fail(std::string why) {
    {
      std::lock_guard<std::mutex> lock(failure_mu);
      if (!failure.empty()) return;
      failure = why;
    }
    failed.store(true);
    LogError(
        "raft: %s; this node's storage stops here (writes, barriers and reads fail) and the "
        "node must stop serving",
        why);
  }

  // --- the state machine (loop thread) ---
  // A timer every kWatchPeriodMs measures how long the loop was kept from running (a long
  // snapshot or apply): past the election timeout, followers stop hearing from a leader that is
  // fine, and the leadership is lost.
  static constexpr uint64_t kWatchPeriodMs = 100;
  uv_timer_t stall_watch{};
  bool watch_ready = false;
  uint64_t last_watch_ns = 0;
  std::atomic<uint64_t> max_stall_ms{0};

  static void WatchStall(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    const uint64_t now = uv_hrtime();
    if (self->last_watch_ns != 0) {
      const uint64_t gap_ms = (now - self->last_watch_ns) / 1000000;
      const uint64_t stall = gap_ms > kWatchPeriodMs ? gap_ms - kWatchPeriodMs : 0;
      if (stall > self->max_stall_ms.load()) self->max_stall_ms.store(stall);
      if (stall >= self->options.election_timeout_ms) {
        LogWarn("raft: the loop was blocked for %d ms (election timeout %d ms)",
                static_cast<int>(stall), static_cast<int>(self->options.election_timeout_ms));
      }
    }
    self->last_watch_ns = now;
  }

  // After each turn of the loop: libraft applies entries that never reach the state machine
  // (barriers, configuration changes) and restores snapshots without telling at which index;
  // when no restore is under way, every entry libraft counts applied is in the store.
  uv_check_t store_check{};
  bool check_ready = false;
  static void CheckStore(uv_check_t* check) {
    auto* self = static_cast<Impl*>(check->data);
    uint64_t applied = 0;
    {
      std::lock_guard<std::mutex> lock(self->restore_mu);
      if (self->restoring) return;
      applied = raft_last_applied(&self->raft);
    }
    if (applied > self->store_index.load()) self->StoreIndexReached(applied);
    raft_id leader = 0;
    const char* address = nullptr;
    raft_leader(&self->raft, &leader, &address);
    if (address == nullptr) leader = 0;
    if (leader != self->leader_hint_id.load()) {
      std::lock_guard<std::mutex> lock(self->leader_hint_mu);
      self->leader_hint = leader == 0 ? std::optional<Peer>() : Peer{leader, address, true};
      self->leader_hint_id.store(leader);
    }
  }
  // The leader as CheckStore last saw it (LeaderHint).
  std::atomic<uint64_t> leader_hint_id{0};
  std::mutex leader_hint_mu;
  std::optional<Peer> leader_hint;  // leader_hint_mu

  void CloseWatch() {
    if (check_ready) {
      check_ready = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&store_check), nullptr);
    }
    if (!watch_ready) return;
    watch_ready = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&stall_watch), nullptr);
  }

  // --- the state machine (raft_fsm.cc) ---
  // What FsmApply hands libraft as the result of an entry it did not apply (JoinedDone).
  static inline char not_applied = 0;
  static int FsmApply(raft_fsm* fsm, const raft_buffer* buf, void** result);

  // A snapshot's pieces (FsmSnapshotAsync), held here, not copied into libraft's memory.
  static constexpr size_t kSnapshotPieceBytes = 4 << 20;
  struct Piece {
    std::string bytes;        // in memory, or
    void* spilled = nullptr;  // in a file-backed buffer of `spilled_len` bytes
    size_t spilled_len = 0;
  };
  std::unique_ptr<storage::RocksDbStorage::View> snapshot_view;
  std::vector<Piece> snapshot_pieces;
  std::vector<raft_buffer> snapshot_bufs;
  static Piece Spilled(std::string&& bytes);
  void ClearPieces();
  static int FsmSnapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs);
  static int FsmSnapshotAsync(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs);
  static int FsmSnapshotFinalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs);
  static int RunSnapshotWork(struct raft* r, void* arg, void (*work)(void*), void (*done)(void*));
  static int FsmRestore(raft_fsm* fsm, raft_buffer* buf);

  // --- a snapshot received from the leader is restored off the loop (raft_fsm.cc) ---
  // FsmRestore hands it to `restore_thread` and returns, so the loop goes on answering the
  // leader (heartbeats, appends) however large the store. The entries libraft applies meanwhile
  // (and a newer snapshot received meanwhile) wait in `held`, in order, and that thread applies
  // them once the store holds the snapshot. Reads and snapshots of the store wait until then
  // (WaitRestored), and so does an apply on the leader (a client waits for its result) or one
  // that would hold more than kMaxHeldBytes.
  struct HeldEntry {
    uint64_t index = 0;
    std::string bytes;
    raft_buffer snapshot{nullptr, 0};  // a snapshot to restore (then `bytes` is empty)
  };
  static constexpr size_t kMaxHeldBytes = 256 << 20;
  std::mutex restore_mu;
  std::condition_variable restore_cv;
  bool restoring = false;      // restore_mu
  std::deque<HeldEntry> held;  // restore_mu
  size_t held_bytes = 0;       // restore_mu
  std::thread restore_thread;  // started and joined on the loop; joined at close too
  void WaitRestored() {
    std::unique_lock<std::mutex> lock(restore_mu);
    restore_cv.wait(lock, [&] { return !restoring; });
  }
  // Decodes and applies one entry; false (and Fail) when it cannot.
  bool ApplyEntry(uint64_t index, std::string_view bytes);

  // --- what standby reads check (RaftStorage::StoreIndex, TableEpoch, read checks) ---
  // Every entry up to store_index is in the store. Set after an entry reached the store, and at
  // an apply that finds no restore under way (libraft's applied index then is the store's).
  std::atomic<uint64_t> store_index{0};
  std::mutex store_mu;  // for store_cv only
  std::condition_variable store_cv;
  void StoreIndexReached(uint64_t index) {
    uint64_t now = store_index.load();
    while (now < index && !store_index.compare_exchange_weak(now, index)) {
    }
    std::lock_guard<std::mutex> lock(store_mu);
    store_cv.notify_all();
  }
  std::atomic<uint64_t> table_epochs[kTables] = {};
  // The same counts, each made once its entry (or restore) reached the store (WaitTablesStored).
  std::atomic<uint64_t> table_stored[kTables] = {};
  void TablesStored(const bool (&tables)[kTables]) {
    for (unsigned t = 1; t < kTables; ++t) {
      if (tables[t]) table_stored[t].fetch_add(1);
    }
    std::lock_guard<std::mutex> lock(store_mu);
    store_cv.notify_all();
  }
  // The keys (and the prefixes ending in '/' above them) the last kReadCheckEntries entries
  // wrote, as hashes, noted before each entry reaches the store; `written_floor`: every entry
  // after it is here. A restore (which replaces the store) empties it and counts in `restores`.
  struct Written {
    uint64_t index = 0;
    bool all = false;  // too many keys to remember: as if it wrote every key
    std::vector<uint64_t> keys;
    std::vector<uint64_t> prefixes;
  };
  std::mutex written_mu;
  std::deque<Written> written;  // written_mu
  uint64_t written_floor = 0;   // written_mu
  size_t written_hashes = 0;    // written_mu: keys and prefixes in `written`
  uint64_t restores = 0;        // written_mu
  // Notes what `ops` (entry `index`) writes, before they reach the store; `tables`: the tables
  // it counted in.
  void NoteWritten(uint64_t index, const std::vector<storage::BatchOp>& ops,
                   bool (&tables)[kTables]);
  // A snapshot is about to replace the store.
  void NoteReplaced();
  // The store emptied and filled with the snapshot `buf` (freed here); Fail when it cannot.
  void Restore(raft_buffer buf);
  // The held entries and snapshots, then `restoring` off (restore_thread).
  void ApplyHeld();

  // --- requests whose answer arrives later on the loop (apply, barrier, membership) ---
  template <typename Req>
  struct Pending {
    Req req{};
    std::promise<absl::Status> result;
    std::string what;
  };

  static void BarrierDone(struct raft_barrier* req, int status) {
    auto* p = static_cast<Pending<struct raft_barrier>*>(req->data);
    p->result.set_value(status == 0 ? absl::OkStatus() : RaftError(status, p->what));
    delete p;
  }
  static void ChangeDone(raft_change* req, int status) {
    auto* p = static_cast<Pending<raft_change>*>(req->data);
    p->result.set_value(status == 0 ? absl::OkStatus() : RaftError(status, p->what));
    delete p;
  }

  // A leadership transfer. libraft holds the request until it calls back (another server leads,
  // or the transfer was given up; at close at the latest), possibly after the caller stopped
  // waiting: the request lives on the heap and the callback frees it.
  struct Transfer {
    struct raft_transfer req {};
    std::promise<void> done;
  };
  static void TransferDone(struct raft_transfer* req) {
    auto* t = static_cast<Transfer*>(req->data);
    t->done.set_value();
    delete t;
  }

  // Starts `start` on the loop with a fresh Pending and waits for its callback, at most
  // `timeout`, and no longer once the state machine has failed. `start` returns libraft's
  // immediate result; non-zero means the callback will not run. The callback owns the Pending
  // (a caller that stopped waiting leaves it to the callback).
  template <typename Req>
  absl::Status Await(std::string what, absl::Duration timeout,
                     const std::function<int(Pending<Req>*)>& start) {
    auto* p = new Pending<Req>();
    p->req.data = p;
    p->what = what;
    std::future<absl::Status> f = p->result.get_future();
    bool ran = RunOnLoop([&] {
      int rv = start(p);
      if (rv != 0) {
        p->result.set_value(RaftError(rv, p->what));
        delete p;
      }
    });
    if (!ran) {
      delete p;  // `start` did not run: libraft never saw it
      return absl::UnavailableError("the Raft node is stopping or not answering");
    }
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (f.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) return f.get();
      if (failed.load()) return FailedStorage();
      if (absl::Now() >= deadline) return TimedOut(what, timeout);
    }
  }

  // --- writes on their way to the loop (RaftStorage::ProposeIn) ---
  // The writes that arrive while the loop is busy are joined into one log entry when it takes
  // them up (one append, one message to each follower, one state machine write for all), at
  // most kJoinedWrites writes and kJoinedBytes of them each (a larger write goes alone). Each
  // write's answer is its entry's.
  static constexpr size_t kJoinedWrites = 64;
  static constexpr size_t kJoinedBytes = 1 << 20;
  struct Proposal {
    EncodedOps ops;
    std::promise<absl::Status> result;  // set once: by JoinedDone, or where it failed
    std::atomic<uint64_t> term{0};      // the entry's term, once appended
  };
  std::mutex propose_mu;
  std::vector<std::shared_ptr<Proposal>> proposals;  // propose_mu: waiting for the loop
  bool drain_posted = false;                         // propose_mu: DrainProposals is queued
  struct Joined {
    struct raft_apply req {};
    std::vector<std::shared_ptr<Proposal>> writes;
  };
  static void Answer(const std::vector<std::shared_ptr<Proposal>>& writes, size_t from,
                     const absl::Status& s) {
    for (size_t i = from; i < writes.size(); ++i) writes[i]->result.set_value(s);
  }
  // Loop thread: the writes queued so far, joined and appended.
  void DrainProposals();
  static void JoinedDone(struct raft_apply* req, int status, void* result) {
    std::unique_ptr<Joined> j(static_cast<Joined*>(req->data));
    Answer(j->writes, 0,
           status != 0              ? RaftError(status, "write")
           : result == &not_applied ? FailedStorage()
                                    : absl::OkStatus());
  }
  // The writes still queued, answered `s` (nothing of them was appended).
  void FailProposals(const absl::Status& s) {
    std::vector<std::shared_ptr<Proposal>> left;
    {
      std::lock_guard<std::mutex> lock(propose_mu);
      left.swap(proposals);
      drain_posted = false;
    }
    Answer(left, 0, s);
  }

  static void Closed(struct raft* r) {
    auto* self = static_cast<Impl*>(r->data);
    self->inbox.Close(nullptr);
    self->CloseWatch();
    self->FailProposals(absl::UnavailableError("the Raft node is stopping; nothing was written"));
  }

  ~Impl() {
    if (thread.joinable()) {
      inbox.Last([this] { raft_close(&raft, &Impl::Closed); });
      thread.join();
    } else if (loop_ready) {
      // Start() failed before the loop ran: close what was opened and let the loop settle.
      if (raft_ready) {
        raft_close(&raft, &Impl::Closed);
      } else {
        inbox.Close(nullptr);
        CloseWatch();
      }
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (restore_thread.joinable()) restore_thread.join();  // the loop is gone: no more to hold
    if (io_ready) raft_uv_close(&io);
    if (loop_ready && uv_loop_close(&loop) != 0) LogError("raft: the loop still had handles open");
    transport.reset();
  }
};

}  // namespace strongroom::raft

#endif  // STRONGROOM_APPLIANCE_RAFT_RAFT_STORAGE_IMPL_H_
