#include "appliance/broker/join_tokens.h"

#include <openssl/sha.h>

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {
namespace {

namespace json = core::json;

constexpr char kPrefix[] = "sr-join.";
constexpr size_t kRandomChars = 44;  // base62: about 262 bits
constexpr char kTokenKeys[] = "core/raft/join-token/";
constexpr char kAdmittedKeys[] = "core/raft/admitted/";
constexpr const char* kRemovedKeys = JoinTokens::kRemovedPrefix;

std::string HashHex(std::string_view token) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(token.data()), token.size(), md);
  std::string out;
  for (uint8_t c : md) absl::StrAppendFormat(&out, "%02x", c);
  return out;
}

bool WellFormed(std::string_view token) {
  if (token.size() != sizeof(kPrefix) - 1 + kRandomChars || !token.starts_with(kPrefix)) {
    return false;
  }
  for (char c : token.substr(sizeof(kPrefix) - 1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::optional<json::object>> ReadRecord(storage::Storage* s, std::string_view key) {
  ASSIGN_OR_RETURN(auto raw, s->Get(key));
  if (!raw) return std::nullopt;
  ASSIGN_OR_RETURN(json::object o, core::ParseObject(*raw));
  return o;
}

absl::Status Refused(std::string_view why) { return absl::PermissionDeniedError(Av(why)); }

}  // namespace

std::string JoinTokens::Sha256Hex(std::string_view bytes) { return HashHex(bytes); }

std::string JoinTokens::IdOf(std::string_view token) {
  if (!WellFormed(token)) return "";
  return HashHex(token).substr(0, 16);
}

absl::StatusOr<JoinTokens::Minted> JoinTokens::Mint(std::string_view node_id, absl::Duration ttl,
                                                    absl::Time now) {
  if (ttl < absl::Seconds(1) || ttl > kJoinTokenMaxTtl) {
    return absl::InvalidArgumentError("ttl must be between 1s and 24h");
  }
  Minted m;
  m.token = absl::StrCat(kPrefix, core::RandomBase62(kRandomChars));
  const std::string hash = HashHex(m.token);
  m.id = hash.substr(0, 16);
  m.expires = now + ttl;
  json::object rec;
  rec["node_id"] = node_id;
  rec["expires_unix"] = absl::ToUnixSeconds(m.expires);
  rec["state"] = "unused";
  // Records of credentials expired for more than a day go (a used or expired credential is
  // refused either way; a day keeps the precise refusal for late attempts).
  std::vector<storage::BatchOp> ops;
  ASSIGN_OR_RETURN(std::vector<std::string> names, barrier_->List(kTokenKeys));
  for (const std::string& name : names) {
    const std::string key = absl::StrCat(kTokenKeys, name);
    ASSIGN_OR_RETURN(auto old, ReadRecord(barrier_, key));
    if (!old) continue;
    ASSIGN_OR_RETURN(auto expires, core::GetInt(*old, "expires_unix"));
    if (expires && *expires + 86400 < absl::ToUnixSeconds(now)) {
      ops.push_back(storage::BatchOp{storage::BatchOp::Kind::kDelete, key, ""});
    }
  }
  ops.push_back(storage::BatchOp::Put(absl::StrCat(kTokenKeys, hash), core::Serialize(rec)));
  RETURN_IF_ERROR(barrier_->Apply(ops));
  return m;
}

absl::StatusOr<std::string> JoinTokens::Check(std::string_view token, std::string_view node_id,
                                              absl::Time now) {
  if (token.empty()) {
    return Refused(
        "a join token is required: mint one for this node id on the active node "
        "(sys/storage/raft/join-token) and pass it as join_token");
  }
  if (!WellFormed(token)) return Refused("the join token is not one this cluster issued");
  const std::string hash = HashHex(token);
  ASSIGN_OR_RETURN(auto rec, ReadRecord(barrier_, absl::StrCat(kTokenKeys, hash)));
  if (!rec) return Refused("the join token is not one this cluster issued");
  ASSIGN_OR_RETURN(auto bound, core::GetString(*rec, "node_id"));
  ASSIGN_OR_RETURN(auto state, core::GetString(*rec, "state"));
  ASSIGN_OR_RETURN(auto expires, core::GetInt(*rec, "expires_unix"));
  if (!bound || !state || !expires) return absl::DataLossError("a join token record is malformed");
  if (*bound != node_id) {
    return Refused(absl::StrCat("the join token was minted for another node id (\"", *bound,
                                "\"), not \"", Av(node_id), "\""));
  }
  if (*state == "used") return Refused("the join token was already used");
  if (*state == "revoked") {
    return Refused(absl::StrCat("node id \"", Av(node_id),
                                "\" was removed from the cluster after this join token was "
                                "minted; mint a new one for it"));
  }
  if (*state != "unused") return absl::DataLossError("a join token record is malformed");
  if (absl::ToUnixSeconds(now) >= *expires) return Refused("the join token has expired");
  return hash.substr(0, 16);
}

namespace {

// The batch operations that make `key_sha256` the only pin of `node_id`.
absl::Status PinOps(storage::Storage* barrier, std::string_view node_id,
                    std::string_view key_sha256, absl::Time now,
                    std::vector<storage::BatchOp>* ops) {
  const std::string pins = absl::StrCat(JoinTokens::kPinnedPrefix, Av(node_id), "/");
  ASSIGN_OR_RETURN(std::vector<std::string> earlier, barrier->List(pins));
  for (const std::string& fp : earlier) {
    if (fp != key_sha256) {
      ops->push_back(storage::BatchOp{storage::BatchOp::Kind::kDelete, absl::StrCat(pins, fp), ""});
    }
  }
  if (!key_sha256.empty()) {
    json::object pin;
    pin["pinned_unix"] = absl::ToUnixSeconds(now);
    ops->push_back(storage::BatchOp::Put(absl::StrCat(pins, Av(key_sha256)), core::Serialize(pin)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status JoinTokens::Pin(std::string_view node_id, std::string_view key_sha256,
                             absl::Time now) {
  if (key_sha256.empty()) return absl::InvalidArgumentError("no key to pin");
  const std::string pins = absl::StrCat(kPinnedPrefix, Av(node_id), "/");
  ASSIGN_OR_RETURN(std::vector<std::string> earlier, barrier_->List(pins));
  if (earlier.size() == 1 && earlier[0] == key_sha256) return absl::OkStatus();
  std::vector<storage::BatchOp> ops;
  RETURN_IF_ERROR(PinOps(barrier_, node_id, key_sha256, now, &ops));
  return barrier_->Apply(ops);
}

absl::Status JoinTokens::Consume(std::string_view token, std::string_view node_id,
                                 std::string_view key_sha256, absl::Time now) {
  const std::string key = absl::StrCat(kTokenKeys, HashHex(token));
  ASSIGN_OR_RETURN(auto rec, ReadRecord(barrier_, key));
  if (!rec) return absl::DataLossError("the join token record is gone");
  // Checked again at the write: a remove-peer of the node id since the check revoked it, and a
  // used or revoked credential never admits (nor clears a removal).
  ASSIGN_OR_RETURN(auto state, core::GetString(*rec, "state"));
  ASSIGN_OR_RETURN(auto bound, core::GetString(*rec, "node_id"));
  if (!state || *state != "unused" || !bound || *bound != node_id) {
    return Refused("the join token was used, revoked or changed meanwhile");
  }
  (*rec)["state"] = "used";
  (*rec)["used_unix"] = absl::ToUnixSeconds(now);
  json::object admitted;
  admitted["token_id"] = HashHex(token).substr(0, 16);
  admitted["admitted_unix"] = absl::ToUnixSeconds(now);
  std::vector<storage::BatchOp> ops;
  ops.push_back(storage::BatchOp::Put(key, core::Serialize(*rec)));
  ops.push_back(
      storage::BatchOp::Put(absl::StrCat(kAdmittedKeys, Av(node_id)), core::Serialize(admitted)));
  ops.push_back(storage::BatchOp{storage::BatchOp::Kind::kDelete,
                                 absl::StrCat(kRemovedKeys, Av(node_id)), ""});
  RETURN_IF_ERROR(PinOps(barrier_, node_id, key_sha256, now, &ops));
  return barrier_->Apply(ops);
}

absl::StatusOr<std::string> JoinTokens::AddRefusal(std::string_view node_id) {
  ASSIGN_OR_RETURN(auto removed, barrier_->Get(absl::StrCat(kRemovedKeys, Av(node_id))));
  if (removed) {
    return absl::StrCat("node id \"", Av(node_id),
                        "\" was removed from the cluster; it comes back only with a join token "
                        "minted for it since (sys/storage/raft/join-token)");
  }
  ASSIGN_OR_RETURN(auto admitted, barrier_->Get(absl::StrCat(kAdmittedKeys, Av(node_id))));
  if (!admitted) {
    return absl::StrCat("node id \"", Av(node_id),
                        "\" was not admitted by a join token; join through "
                        "sys/storage/raft/join with one");
  }
  return std::string();
}

absl::Status JoinTokens::ClearAdmission(std::string_view node_id) {
  return barrier_->Delete(absl::StrCat(kAdmittedKeys, Av(node_id)));
}

absl::Status JoinTokens::MarkRemoved(std::string_view node_id, absl::Time now) {
  std::vector<storage::BatchOp> ops;
  json::object mark;
  mark["removed_unix"] = absl::ToUnixSeconds(now);
  ops.push_back(
      storage::BatchOp::Put(absl::StrCat(kRemovedKeys, Av(node_id)), core::Serialize(mark)));
  ops.push_back(storage::BatchOp{storage::BatchOp::Kind::kDelete,
                                 absl::StrCat(kAdmittedKeys, Av(node_id)), ""});
  ASSIGN_OR_RETURN(std::vector<std::string> keys, barrier_->List(kTokenKeys));
  for (const std::string& name : keys) {
    const std::string key = absl::StrCat(kTokenKeys, name);
    ASSIGN_OR_RETURN(auto rec, ReadRecord(barrier_, key));
    if (!rec) continue;
    ASSIGN_OR_RETURN(auto bound, core::GetString(*rec, "node_id"));
    ASSIGN_OR_RETURN(auto state, core::GetString(*rec, "state"));
    if (bound != node_id || state != "unused") continue;
    (*rec)["state"] = "revoked";
    ops.push_back(storage::BatchOp::Put(key, core::Serialize(*rec)));
  }
  return barrier_->Apply(ops);
}

}  // namespace strongroom::broker
