// Join credentials and removed node ids, kept in replicated state (issue 17, items 1 and 5).
//
// A join credential ("sr-join." + 32 random bytes, base64url) is minted on the active node by a
// sudo token (sys/storage/raft/join-token), bound to one node id, with a TTL (default 15 minutes,
// at most 24 hours). Only its SHA-256 is stored, through the barrier (so the record is
// authenticated by the keyring: a node's disk cannot forge one) and through Raft (so any later
// leader can check it), under core/raft/join-token/<sha256 hex>. The leader checks a joiner's
// credential before it wraps any KEK (ClusterNode::ServeJoin) and consumes it in one Raft write:
// the record marked used, and core/raft/admitted/<node id> written, which the "add" call needs.
//
// Single use across leaders: the leader checks after a Raft barrier of its term (it has applied
// everything committed before) and consumes under one mutex; the consuming write must commit in
// that same term, else the join is refused (ClusterNode::ServeJoin). Two leaders cannot both
// commit in one term, and a later leader's barrier applies an earlier leader's committed write.
//
// The key a node joined with is pinned: Consume also writes core/raft/cert/<node id>/<SHA-256 of
// its certificate's public key> (replacing earlier pins of the id; a renewed certificate for the
// same key stays accepted). The active node pins its own key the same way (Pin). The key names
// are readable without the keyring, so every member (sealed or not) refuses, on the cluster
// port, a removed node id and a certificate for another key of a pinned one
// (ClusterNode::RefusedIdentity).
//
// Removal is final: remove-peer writes core/raft/removed/<node id>, drops the node's admission and
// revokes every credential minted for that node id before. Join and add of a removed id are
// refused; the only way back is a credential minted for that node id after its removal (its use
// clears the mark).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"

namespace strongroom::broker {

inline constexpr absl::Duration kJoinTokenDefaultTtl = absl::Minutes(15);
inline constexpr absl::Duration kJoinTokenMaxTtl = absl::Hours(24);
// A presented credential longer than this is refused before any work.
inline constexpr size_t kMaxJoinTokenBytes = 256;

class JoinTokens {
 public:
  // `barrier`: the core's barrier (unsealed), over the Raft storage. Not owned.
  explicit JoinTokens(storage::Storage* barrier) : barrier_(barrier) {}

  struct Minted {
    std::string token;
    std::string id;  // the first 16 hex digits of its SHA-256 (names it in audit records)
    absl::Time expires;
  };
  absl::StatusOr<Minted> Mint(std::string_view node_id, absl::Duration ttl, absl::Time now);

  // Whether `token` admits `node_id` now. OK: the credential's id (for Consume and the audit
  // record). PermissionDenied with the reason otherwise. Writes nothing.
  absl::StatusOr<std::string> Check(std::string_view token, std::string_view node_id,
                                    absl::Time now);
  // The credential Check accepted becomes used, `node_id` admitted and its certificate's key
  // (`key_sha256`, lowercase hex; none when empty) pinned (one Raft write).
  absl::Status Consume(std::string_view token, std::string_view node_id,
                       std::string_view key_sha256, absl::Time now);
  // Pins `key_sha256` for `node_id` (replacing earlier pins), unless it is pinned already.
  absl::Status Pin(std::string_view node_id, std::string_view key_sha256, absl::Time now);

  // "" when `node_id` may be added as a voter (admitted by a credential, not removed since);
  // else why not.
  absl::StatusOr<std::string> AddRefusal(std::string_view node_id);
  // The admission is spent once the node is a voter.
  absl::Status ClearAdmission(std::string_view node_id);
  // remove-peer: the mark, the admission dropped, earlier credentials for the id revoked.
  absl::Status MarkRemoved(std::string_view node_id, absl::Time now);

  // Where removed ids and pinned certificates are (key names only: PinnedKeyPrefix + node id
  // + "/" + fingerprint; RemovedKeyPrefix + node id).
  static constexpr char kPinnedPrefix[] = "core/raft/cert/";
  static constexpr char kRemovedPrefix[] = "core/raft/removed/";

  // The id a credential is named by (for a refusal's audit record too); "" when malformed.
  static std::string IdOf(std::string_view token);
  // Lowercase hex SHA-256.
  static std::string Sha256Hex(std::string_view bytes);

 private:
  storage::Storage* barrier_;
};

}  // namespace strongroom::broker
