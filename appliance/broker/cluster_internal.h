// Helpers shared by the cluster's translation units (cluster.cc: membership and forwarding;
// cluster_service.cc: the calls other members make). Not for other modules.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/broker/cluster.h"
#include "appliance/core/audit.h"
#include "appliance/core/json.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker::cluster_internal {

namespace json = core::json;

inline constexpr char kJoinPath[] = "sys/storage/raft/join";

// The audit record of a cluster change this node carries out (or refuses): a new request id,
// `path` and its `step`.
inline core::AuditSystemEvent ChangeEvent(std::string_view path, std::string_view step) {
  core::AuditSystemEvent event;
  event.request_id = core::NewUuid();
  event.path = std::string(path);
  event.data["step"] = step;
  return event;
}

// A node id as a certificate and the configuration may name one: 1 to 64 letters, digits, '.',
// '_' or '-' (also the shape of a key's SHA-256 in hex).
inline bool ValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

inline bool AllIn(std::string_view s, std::string_view extra) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// What a peer may call itself and where it says it is: no separators, no control characters
// (an api_addr ends up in a Location header).
inline absl::Status CheckPeer(const PeerInfo& p) {
  if (p.node_id.size() > 64 || !AllIn(p.node_id, "._-")) {
    return absl::InvalidArgumentError("node_id must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (p.cluster_addr.size() > 100 || !AllIn(p.cluster_addr, ".:-[]")) {
    return absl::InvalidArgumentError("cluster address must be host:port");
  }
  if (p.api_addr.size() > 100 || !AllIn(p.api_addr, ".:/-[]") ||
      !(absl::StartsWith(p.api_addr, "https://") || absl::StartsWith(p.api_addr, "http://"))) {
    return absl::InvalidArgumentError("api_addr must be http(s)://host:port");
  }
  return absl::OkStatus();
}

// Which table of the core's (RaftOptions::table_of) a store key belongs to, for a standby's own
// reads (cluster_standby.cc): 0 for data the core reads when it needs it.
unsigned StandbyTableOf(std::string_view key);

inline json::object Failure(std::string_view message) {
  json::object o;
  o["ok"] = false;
  o["error"] = message;
  return o;
}

inline std::string B64(std::string_view s) { return absl::Base64Escape(Av(s)); }

inline absl::StatusOr<std::string> UnB64(const json::object& o, std::string_view key) {
  ASSIGN_OR_RETURN(auto v, core::GetString(o, key));
  std::string out;
  if (!v || !absl::Base64Unescape(*v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", Av(key), "\" must be base64"));
  }
  return out;
}

}  // namespace strongroom::broker::cluster_internal
