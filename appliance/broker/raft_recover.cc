#include "appliance/broker/raft_recover.h"

#include <chrono>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "appliance/broker/cluster.h"
#include "appliance/core/json.h"
#include "base/log.h"

namespace strongroom::broker {
namespace {

namespace json = core::json;

constexpr size_t kMaxPeersFile = 64 * 1024;
constexpr size_t kMaxPeers = 64;
constexpr auto kProbeTimeout = std::chrono::milliseconds(3000);

bool WellFormed(std::string_view s, std::string_view extra, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Whether the member at `cluster_addr` answers a service call (any answer: it runs).
bool Reachable(const raft::TlsFiles& tls, const std::string& cluster_addr) {
  auto answer = raft::CallService(tls, cluster_addr, R"({"op":"term"})", kProbeTimeout);
  if (!answer.ok()) return false;
  return core::ParseObject(*answer).ok();
}

}  // namespace

absl::StatusOr<std::vector<RecoverPeer>> ReadPeersFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the peers file \"", path, "\""));
  std::string text(kMaxPeersFile + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPeersFile) {
    return absl::InvalidArgumentError("the peers file is larger than 64 KiB");
  }
  boost::system::error_code ec;
  json::parse_options po;
  po.max_depth = 4;
  json::value v = json::parse(text, ec, {}, po);
  const std::string bad = absl::StrCat(
      "the peers file \"", path,
      "\" must be a JSON array of {\"id\": NODE_ID, \"address\": \"host:port\", \"non_voter\": "
      "false}");
  if (ec || !v.is_array()) return absl::InvalidArgumentError(bad);
  const json::array& a = v.as_array();
  if (a.empty()) return absl::InvalidArgumentError(absl::StrCat(bad, ": it lists no member"));
  if (a.size() > kMaxPeers)
    return absl::InvalidArgumentError("the peers file lists too many members");
  std::vector<RecoverPeer> out;
  std::set<std::string> seen;
  for (const json::value& e : a) {
    if (!e.is_object()) return absl::InvalidArgumentError(bad);
    const json::object& o = e.as_object();
    for (const auto& kv : o) {
      if (kv.key() != "id" && kv.key() != "address" && kv.key() != "non_voter") {
        return absl::InvalidArgumentError(
            absl::StrCat("the peers file has an unknown field \"", std::string(kv.key()), "\""));
      }
    }
    auto id = core::GetString(o, "id");
    auto address = core::GetString(o, "address");
    auto non_voter = core::GetBool(o, "non_voter");
    if (!id.ok() || !address.ok() || !non_voter.ok() || !*id || !*address) {
      return absl::InvalidArgumentError(bad);
    }
    if (!WellFormed(**id, "._-", 64)) {
      return absl::InvalidArgumentError(
          "peers file: id must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    if (!WellFormed(**address, ".:-[]", 100) || (*address)->find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("peers file: the address of \"", **id, "\" must be host:port"));
    }
    if (!seen.insert(**id).second) {
      return absl::InvalidArgumentError(absl::StrCat("peers file: \"", **id, "\" is listed twice"));
    }
    out.push_back(RecoverPeer{**id, **address, !non_voter->value_or(false)});
  }
  return out;
}

std::function<absl::StatusOr<std::vector<raft::Peer>>(const std::vector<raft::Peer>&)>
RecoveryDecision(std::vector<RecoverPeer> peers, std::string self_node_id, raft::TlsFiles tls) {
  return [peers = std::move(peers), self = std::move(self_node_id), tls = std::move(tls)](
             const std::vector<raft::Peer>& current) -> absl::StatusOr<std::vector<raft::Peer>> {
    const std::string refused = "raft recovery refused: ";
    bool self_listed = false;
    for (const RecoverPeer& p : peers) self_listed |= p.node_id == self && p.voter;
    if (!self_listed) {
      return absl::FailedPreconditionError(
          absl::StrCat(refused, "this node (", self, ") must be in the peers file as a voter"));
    }
    // Every member of the file must be in the current configuration (its API address and Raft
    // id come from there).
    std::vector<raft::Peer> forced;
    for (const RecoverPeer& p : peers) {
      const raft::Peer* found = nullptr;
      for (const raft::Peer& c : current) {
        if (DecodePeer(c.address).node_id == p.node_id) found = &c;
      }
      if (found == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat(refused, "\"", p.node_id, "\" is not in the current Raft configuration"));
      }
      const PeerInfo m = DecodePeer(found->address);
      forced.push_back(raft::Peer{
          found->id, absl::StrCat(p.cluster_addr, "|", m.node_id, "|", m.api_addr), p.voter});
    }
    // The probe: a majority of the current voters reachable means the cluster has its quorum.
    size_t voters = 0, reachable = 0;
    std::vector<std::pair<std::string, std::future<bool>>> probes;
    for (const raft::Peer& c : current) {
      if (!c.voter) continue;
      ++voters;
      const PeerInfo m = DecodePeer(c.address);
      if (m.node_id == self) {
        ++reachable;
        continue;
      }
      probes.emplace_back(absl::StrCat(m.node_id, " at ", m.cluster_addr),
                          std::async(std::launch::async, [&tls, addr = m.cluster_addr] {
                            return Reachable(tls, addr);
                          }));
    }
    std::vector<std::string> up, down;
    for (auto& [name, probe] : probes) {
      if (probe.get()) {
        ++reachable;
        up.push_back(name);
      } else {
        down.push_back(name);
      }
    }
    LogInfo(
        "raft recovery: %d of the %d voters of the current configuration reachable (%s); "
        "not reachable: %s",
        reachable, voters, up.empty() ? "this node alone" : absl::StrJoin(up, ", "),
        down.empty() ? "none" : absl::StrJoin(down, ", "));
    if (2 * reachable > voters) {
      return absl::FailedPreconditionError(absl::StrCat(
          refused, reachable, " of the ", voters,
          " voters of the current Raft configuration are reachable (this node",
          up.empty() ? "" : ", ", absl::StrJoin(up, ", "),
          "): the cluster has its quorum. Start this node without -raft-recover, and remove "
          "members that are gone with sys/storage/raft/remove-peer"));
    }
    return forced;
  };
}

}  // namespace strongroom::broker
