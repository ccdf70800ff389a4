#include "appliance/engines/raft_snapshot.h"

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/barrier.h"
#include "appliance/core/core.h"
#include "appliance/core/json.h"
#include "appliance/core/keyring.h"
#include "appliance/storage/snapshot_archive.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::Request;
using core::Response;
using core::json::array;
using core::json::object;

// The core's keys (core/core.cc): the KEK-wrapped keyring (stored as is) and the cluster's name
// and id (barrier-encrypted).
constexpr std::string_view kKeyringKey = "core/keyring";
constexpr std::string_view kClusterKey = "core/cluster";
// Set by every restore (a random id, stored as is): what TendRestores watches.
constexpr std::string_view kRestoreMarkerKey = "core/snapshot-restore";
// Base64 per string of data.snapshot in a GET's answer (the worker joins them).
constexpr size_t kAnswerChunk = 1u << 20;

struct State {
  std::mutex mu;
  SnapshotStore store;
  bool primed = false;
  bool restoring = false;   // a restore runs on this node (it reloads the core itself)
  std::string last_marker;  // the marker this node's core was last loaded with
};
State& Shared() {
  static State* s = new State();
  return *s;
}

// The audit devices' table and chain state stay as they are: the audit log is not part of the
// restored state, and its chain must go on. So does the cluster's membership state (join
// credentials, admissions, removed node ids: broker/join_tokens.h): a restore must not bring back
// a used or revoked credential, nor a removed node's right to join.
bool Preserved(std::string_view key) {
  return key == "core/audit" || key.starts_with("sys/audit/") || key.starts_with("core/raft/");
}
bool Excluded(std::string_view key) { return Preserved(key) || key == kRestoreMarkerKey; }

absl::StatusOr<SnapshotStore> Store() {
  std::lock_guard<std::mutex> lock(Shared().mu);
  if (Shared().store.physical == nullptr || !Shared().store.scan) {
    return absl::UnavailableError("snapshots are not available on this node");
  }
  return Shared().store;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ScanAll(
    const SnapshotStore& store) {
  std::vector<std::pair<std::string, std::string>> out;
  RETURN_IF_ERROR(store.scan([&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  }));
  return out;
}

absl::StatusOr<core::Keyring> UnwrapKeyring(core::Core* core, std::string_view wrapped,
                                            SecureBytes* serialized) {
  auto plain =
      core->seal()->Unwrap({reinterpret_cast<const uint8_t*>(wrapped.data()), wrapped.size()});
  if (!plain.ok()) return plain.status();
  auto keyring = core::Keyring::Parse(plain->span());
  if (!keyring.ok()) return keyring.status();
  if (serialized != nullptr) *serialized = std::move(*plain);
  return keyring;
}

absl::StatusOr<Response> Save(core::Core* core) {
  ASSIGN_OR_RETURN(SnapshotStore store, Store());
  // Encoded as the store is scanned, and no further than the limit: a store too large for a
  // snapshot costs at most the limit's worth of work and memory to refuse.
  storage::SnapshotBuilder builder(absl::ToUnixSeconds(core->Now()));
  std::optional<std::string> wrapped;
  RETURN_IF_ERROR(store.scan([&](std::string_view k, std::string_view v) {
    if (Excluded(k)) return true;
    if (k == kKeyringKey) wrapped = std::string(v);
    return builder.Add(k, v);
  }));
  if (builder.over_limit()) {
    LogWarn(
        "sys/storage/raft/snapshot refused: the archive would pass the limit of %zu bytes after "
        "%zu entries (%zu bytes); stopped building at the limit",
        builder.max_bytes(), builder.entries(), builder.bytes());
    return absl::FailedPreconditionError(absl::StrCat(
        "the store is too large for an API snapshot: its archive would pass the limit of ",
        builder.max_bytes(),
        " bytes (the most this appliance transfers in one snapshot), so none was taken; back up "
        "the store by copying the data directory of a stopped node instead"));
  }
  if (!wrapped) return absl::FailedPreconditionError("the store holds no barrier keyring");
  SecureBytes serialized;
  auto keyring = UnwrapKeyring(core, *wrapped, &serialized);
  if (!keyring.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot unwrap the stored keyring: ", keyring.status().message()));
  }
  const size_t entries = builder.entries();
  const std::string bytes = std::move(builder).Finish(storage::SnapshotMacKey(serialized.span()));
  LogInfo("sys/storage/raft/snapshot: %zu entries, %zu bytes", entries, bytes.size());
  const std::string b64 = absl::Base64Escape(bytes);
  array chunks;
  for (size_t at = 0; at < b64.size(); at += kAnswerChunk) {
    chunks.emplace_back(b64.substr(at, kAnswerChunk));
  }
  object o;
  o["snapshot"] = std::move(chunks);
  return Response::Raw(std::move(o));
}

// The archive's bytes from data.snapshot (base64 strings, joined), bounded before decoding.
absl::StatusOr<std::string> ReceivedBytes(const Request& req) {
  auto it = req.data.find("snapshot");
  if (it == req.data.end() || !it->value().is_array()) {
    return core::Bad("missing snapshot body");
  }
  const size_t max_b64 = (storage::kMaxSnapshotBytes + 2) / 3 * 4;
  std::string b64;
  for (const auto& v : it->value().as_array()) {
    if (!v.is_string()) return core::Bad("missing snapshot body");
    const auto& s = v.as_string();
    if (b64.size() + s.size() > max_b64) {
      return core::Bad(absl::StrCat("invalid snapshot: over the limit of ",
                                    storage::kMaxSnapshotBytes, " bytes"));
    }
    b64.append(s.data(), s.size());
  }
  std::string bytes;
  if (b64.empty() || !absl::Base64Unescape(b64, &bytes)) {
    return core::Bad("missing snapshot body");
  }
  return bytes;
}

absl::StatusOr<Response> Restore(core::Core* core, const Request& req, bool force) {
  ASSIGN_OR_RETURN(SnapshotStore store, Store());
  ASSIGN_OR_RETURN(std::string bytes, ReceivedBytes(req));
  // 1. Checked whole; nothing changes until every check passed.
  ASSIGN_OR_RETURN(storage::SnapshotArchive archive, storage::DecodeSnapshot(bytes));
  std::map<std::string_view, std::string_view> in_snapshot;
  for (const auto& [k, v] : archive.entries) in_snapshot.emplace(k, v);
  auto wrapped = in_snapshot.find(kKeyringKey);
  if (wrapped == in_snapshot.end()) return core::Bad("invalid snapshot: it holds no keyring");
  SecureBytes serialized;
  auto keyring = UnwrapKeyring(core, wrapped->second, &serialized);
  if (!keyring.ok()) {
    return core::Bad(absl::StrCat(
        "the snapshot's barrier keyring cannot be unwrapped by the KEK in this node's token (",
        keyring.status().message(),
        "): it was taken by a cluster whose KEK this token does not hold; put that KEK in the "
        "token to restore it with sys/storage/raft/snapshot-force"));
  }
  RETURN_IF_ERROR(storage::VerifySnapshotMac(bytes, storage::SnapshotMacKey(serialized.span())));
  core::Barrier restored(nullptr);
  restored.Unseal(keyring->Clone());
  std::string snapshot_cluster;
  if (auto c = in_snapshot.find(kClusterKey); c != in_snapshot.end()) {
    ASSIGN_OR_RETURN(std::string plain, restored.Decrypt(kClusterKey, c->second));
    ASSIGN_OR_RETURN(object o, core::ParseObject(plain));
    snapshot_cluster = core::GetString(o, "id").value_or(std::nullopt).value_or("");
  }
  if (!force && snapshot_cluster != core->cluster_id()) {
    return core::Bad(absl::StrCat("the snapshot was taken by another cluster (id \"",
                                  snapshot_cluster, "\"; this is \"", core->cluster_id(),
                                  "\"); use sys/storage/raft/snapshot-force to restore it"));
  }

  // 2. Sealed while the store is replaced: no request reads a half-loaded core, and the audit
  // devices are closed (their chain state saved) before their state is carried over.
  const std::string marker = core::NewUuid();
  {
    std::lock_guard<std::mutex> lock(Shared().mu);
    if (Shared().restoring) return absl::UnavailableError("a snapshot restore is in progress");
    Shared().restoring = true;  // this node reloads itself, below; TendRestores stays out
  }
  (void)core->SealNow("restoring a snapshot");
  absl::Status applied = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto current, ScanAll(store));
    std::optional<core::Keyring> current_keyring;
    for (const auto& [k, v] : current) {
      if (k == kKeyringKey) {
        ASSIGN_OR_RETURN(auto kr, UnwrapKeyring(core, v, nullptr));
        current_keyring = std::move(kr);
      }
    }
    core::Barrier now(nullptr);
    if (current_keyring) now.Unseal(std::move(*current_keyring));
    std::vector<storage::BatchOp> ops;
    for (const auto& [k, v] : current) {
      if (Preserved(k)) {
        // Kept, but under the restored keyring (which may lack a term written since).
        ASSIGN_OR_RETURN(std::string plain, now.Decrypt(k, v));
        ASSIGN_OR_RETURN(std::string sealed, restored.Encrypt(k, plain));
        ops.push_back(storage::BatchOp::Put(k, std::move(sealed)));
      } else if (!in_snapshot.contains(k) && k != kRestoreMarkerKey) {
        ops.push_back(storage::BatchOp::Delete(k));
      }
    }
    for (auto& [k, v] : archive.entries) {
      if (Excluded(k)) continue;
      ops.push_back(storage::BatchOp::Put(std::move(k), std::move(v)));
    }
    ops.push_back(storage::BatchOp::Put(std::string(kRestoreMarkerKey), marker));
    LogInfo("restoring a snapshot taken at unix %lld: %zu entries",
            static_cast<long long>(archive.created_unix), archive.entries.size());
    return store.physical->Apply(ops);
  }();
  core->Start();  // the restored state, or the old one when the batch was refused
  {
    std::lock_guard<std::mutex> lock(Shared().mu);
    Shared().restoring = false;
    Shared().primed = applied.ok();
    Shared().last_marker = applied.ok() ? marker : "";
  }
  if (!applied.ok()) {
    LogError("snapshot restore failed, nothing was changed: %s", applied.message());
    return applied;
  }
  if (core->sealed()) {
    return core::InternalErrorWithPublicDetail(absl::StrCat(
        "the snapshot was restored but this node cannot unseal with it: ", core->seal_reason()));
  }
  LogInfo("snapshot restored; the core was reloaded from it");
  return Response::Empty();
}

}  // namespace

void SetSnapshotStore(SnapshotStore store) {
  std::lock_guard<std::mutex> lock(Shared().mu);
  Shared().store = std::move(store);
}

bool IsSnapshotPath(std::string_view rel_path) {
  return rel_path == "storage/raft/snapshot" || rel_path == "storage/raft/snapshot-force";
}

absl::StatusOr<Response> HandleSnapshot(core::Core* core, Request& req) {
  if (req.rel_path == "storage/raft/snapshot" && req.operation == core::Operation::kRead) {
    return Save(core);
  }
  if (!core::IsWrite(req)) return core::UnsupportedOperation();
  return Restore(core, req, req.rel_path == "storage/raft/snapshot-force");
}

void TendRestores(core::Core& core) {
  State& s = Shared();
  storage::Storage* physical = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    physical = s.store.physical;
  }
  if (physical == nullptr) return;
  {
    // Read under the lock: a restore on this node sets the marker it loaded under it too.
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.restoring) return;
    auto got = physical->Get(kRestoreMarkerKey);
    if (!got.ok()) return;
    const std::string marker = got->value_or("");
    if (core.sealed() || core.awaiting_cluster() || !core.initialized()) {
      // A core that is not loaded reads the current state when it is (Start), which may be
      // before the next call (the main loop's TendCluster): the marker is taken then.
      s.primed = false;
      return;
    }
    if (!s.primed) {
      s.primed = true;
      s.last_marker = marker;
      return;
    }
    if (marker == s.last_marker) return;
    s.last_marker = marker;
  }
  LogInfo("a snapshot was restored into the cluster; reloading from the restored state");
  (void)core.SealNow("reloading after a snapshot restore");
  core.Start();
}

}  // namespace strongroom::engines
