// Backups as Vault takes them: `GET sys/storage/raft/snapshot` answers the whole physical store
// as a snapshot archive (storage/snapshot_archive.h: barrier ciphertext, the KEK-wrapped keyring,
// a MAC and a checksum), `POST sys/storage/raft/snapshot` restores one taken by this cluster and
// `POST sys/storage/raft/snapshot-force` one taken by another cluster whose KEK this node's token
// holds. All three need sudo. The same paths serve single-node RocksDB storage.
//
// A restore is checked whole before anything changes (size, checksum, the keyring unwrapped by
// the token's KEK, the MAC under that keyring, the cluster id unless forced). Then the node seals
// itself (in-flight requests get 503), and the store is replaced by ONE atomic batch: under Raft
// one log entry, which every node applies (and replays after a restart) like any other write.
// The batch also sets a marker; each node's main loop (TendRestores) sees it change and reloads
// its core (mounts, policies, tokens, audit devices) from the restored state. The audit devices'
// table and chain state (core/audit, sys/audit/) are not part of a snapshot: they stay as they are
// (re-encrypted under the restored keyring), so the audit chain goes on and records the restore.
//
// Between worker and broker the archive travels as base64 in `data.snapshot` (an array of
// strings within the JSON limits); the worker turns it into the binary HTTP body and back.
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/core/request.h"
#include "appliance/storage/storage.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

// The physical store as the broker holds it (one per process, set once at start).
struct SnapshotStore {
  storage::Storage* physical = nullptr;
  // Every pair, in key order, from one consistent view holding every write committed before
  // the call (Raft: taken on the leader after a barrier), until the callback answers false.
  std::function<absl::Status(const std::function<bool(std::string_view, std::string_view)>&)> scan;
};
void SetSnapshotStore(SnapshotStore store);

// rel_path (below sys/) of the snapshot endpoints.
bool IsSnapshotPath(std::string_view rel_path);
absl::StatusOr<core::Response> HandleSnapshot(core::Core* core, core::Request& req);

// Called by the broker's main loop on every node: when a restore was applied to this node's
// store since the last call (and this node did not run it), reloads the core from it.
void TendRestores(core::Core& core);

}  // namespace strongroom::engines
