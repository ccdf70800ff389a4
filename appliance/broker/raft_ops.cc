#include "appliance/broker/raft_ops.h"

#include <set>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "appliance/broker/cluster.h"
#include "appliance/core/json.h"

namespace strongroom::broker {
namespace {

namespace json = core::json;

absl::Status NotActive() {
  return absl::UnavailableError("local node not active but active cluster node not found");
}

}  // namespace

std::string GoDurationMs(uint64_t ms) {
  if (ms == 0) return "0s";
  if (ms < 1000) return absl::StrCat(ms, "ms");
  const uint64_t h = ms / 3'600'000, m = ms / 60'000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  std::string out;
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (h > 0 || m > 0) absl::StrAppend(&out, m, "m");
  absl::StrAppend(&out, s);
  if (frac != 0) {
    std::string f = absl::StrFormat("%03d", frac);
    while (f.back() == '0') f.pop_back();
    absl::StrAppend(&out, ".", f);
  }
  absl::StrAppend(&out, "s");
  return out;
}

absl::Time HealthHistory::Since(uint64_t id, bool healthy, uint64_t term, absl::Time now) {
  std::lock_guard lock(mu_);
  if (entries_.size() > 1024) entries_.clear();
  auto [it, added] = entries_.try_emplace(id, Entry{healthy, term, now});
  if (!added && (it->second.healthy != healthy || it->second.term != term)) {
    it->second = Entry{healthy, term, now};
  }
  return it->second.since;
}

absl::Time HealthHistory::Uncontacted(uint64_t id, uint64_t term, absl::Time now) {
  std::lock_guard lock(mu_);
  if (uncontacted_.size() > 1024) uncontacted_.clear();
  auto [it, added] = uncontacted_.try_emplace(id, Entry{false, term, now});
  if (!added && it->second.term != term) it->second = Entry{false, term, now};
  return it->second.since;
}

absl::StatusOr<json::object> ClusterNode::AutopilotState(std::string_view version) {
  std::optional<raft::LeaderProgress> p = raft_->Progress();
  if (!p) return NotActive();
  const absl::Time now = absl::Now();
  json::object servers;
  json::array voters, non_voters;
  std::string leader_name;
  size_t n_voters = 0, healthy_voters = 0;
  bool all_healthy = true;
  for (const raft::ServerProgress& s : p->servers) {
    const PeerInfo m = DecodePeer(s.peer.address);
    const bool is_leader = s.peer.id == p->leader_id;
    const bool contacted = s.since_contact_ms.has_value();
    const bool trailing =
        p->last_index > kMaxTrailingLogs && s.match_index < p->last_index - kMaxTrailingLogs;
    const bool healthy =
        is_leader || (contacted && *s.since_contact_ms <= kLastContactThresholdMs && !trailing);
    json::object o;
    o["address"] = m.cluster_addr;
    o["healthy"] = healthy;
    o["id"] = m.node_id;
    // Never heard from in this term: as long ago as the health history knows (at least since
    // this node leads).
    uint64_t since_ms = 0;
    if (contacted) {
      since_ms = *s.since_contact_ms;
    } else {
      const absl::Time first = health_history_.Uncontacted(s.peer.id, p->term, now);
      since_ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(now - first));
    }
    o["last_contact"] = GoDurationMs(is_leader ? 0 : since_ms);
    o["last_index"] = s.match_index;
    o["last_term"] = (is_leader || contacted) ? p->term : 0;
    o["name"] = m.node_id;
    o["node_status"] = "alive";
    o["node_type"] = s.peer.voter ? "voter" : "non-voter";
    o["stable_since"] =
        core::FormatRfc3339Nano(health_history_.Since(s.peer.id, healthy, p->term, now));
    o["status"] = is_leader ? "leader" : s.peer.voter ? "voter" : "non-voter";
    o["version"] = is_leader ? std::string(version) : std::string();
    if (is_leader) leader_name = m.node_id;
    if (s.peer.voter) {
      ++n_voters;
      if (healthy) ++healthy_voters;
      voters.emplace_back(m.node_id);
    } else {
      non_voters.emplace_back(m.node_id);
    }
    all_healthy = all_healthy && healthy;
    servers[m.node_id] = std::move(o);
  }
  const size_t quorum = n_voters / 2 + 1;
  json::object out;
  out["failure_tolerance"] = healthy_voters > quorum ? healthy_voters - quorum : 0;
  out["healthy"] = all_healthy;
  out["leader"] = leader_name;
  out["servers"] = std::move(servers);
  out["voters"] = std::move(voters);
  if (!non_voters.empty()) out["non_voters"] = std::move(non_voters);
  return out;
}

void ClusterNode::CollectMetrics(metrics::Collection& c) {
  if (!ready_.load(std::memory_order_acquire)) return;
  // Each value is one call onto the Raft loop (a loop held by a snapshot makes a scrape wait,
  // as it does every other call: raft_storage.h).
  c.Gauge("raft_storage.stats.term", "This node's current Raft term",
          static_cast<double>(raft_->Term()));
  c.Gauge("raft_storage.stats.commit_index", "The highest Raft index this node knows committed",
          static_cast<double>(raft_->CommitIndex()));
  c.Gauge("raft_storage.stats.applied_index",
          "The highest Raft index this node applied to its state machine",
          static_cast<double>(raft_->AppliedIndex()));
  c.Counter("raft_storage.standby_reads.local",
            "Reads this node answered itself as a standby (linearizable: read point, checks)",
            static_cast<double>(standby_local_reads()));
  c.Counter("raft_storage.standby_reads.forwarded",
            "Reads this node tried to answer as a standby, then forwarded to the active node",
            static_cast<double>(standby_forwarded_reads()));
  const std::optional<raft::LeaderProgress> p = raft_->Progress();
  if (!p) {
    c.Gauge("raft.peers", "Servers in the Raft configuration",
            static_cast<double>(raft_->Configuration().size()));
    return;
  }
  c.Gauge("raft.peers", "Servers in the Raft configuration",
          static_cast<double>(p->servers.size()));
  // The leader's view of each follower it heard from in this term (Vault's, on the active
  // node): the peer's node id is a name from the cluster configuration, bounded by it.
  for (const raft::ServerProgress& s : p->servers) {
    if (s.peer.id == p->leader_id || !s.since_contact_ms) continue;
    c.Gauge("raft_storage.follower.last_heartbeat_ms",
            "Milliseconds since the leader last heard from this follower",
            static_cast<double>(*s.since_contact_ms),
            {{"peer_id", DecodePeer(s.peer.address).node_id}});
  }
}

absl::StatusOr<json::object> ClusterNode::HaStatus(std::string_view version) {
  std::optional<raft::LeaderProgress> p = raft_->Progress();
  if (!p) return NotActive();
  const absl::Time now = absl::Now();
  json::array nodes;
  for (const raft::ServerProgress& s : p->servers) {
    const bool is_leader = s.peer.id == p->leader_id;
    if (!is_leader && !s.since_contact_ms) continue;  // not heard from since this node leads
    const PeerInfo m = DecodePeer(s.peer.address);
    json::object o;
    o["active_node"] = is_leader;
    o["api_address"] = m.api_addr;
    o["clock_skew_ms"] = 0;
    o["cluster_address"] = absl::StrCat("https://", m.cluster_addr);
    o["echo_duration_ms"] = 0;
    o["hostname"] = m.node_id;
    if (is_leader) {
      o["last_echo"] = nullptr;
    } else {
      o["last_echo"] = core::FormatRfc3339Nano(
          now - absl::Milliseconds(static_cast<int64_t>(*s.since_contact_ms)));
    }
    o["replication_primary_canary_age_ms"] = 0;
    o["version"] = is_leader ? std::string(version) : std::string();
    // The active node first, as Vault lists it.
    if (is_leader) {
      nodes.insert(nodes.begin(), json::value(std::move(o)));
    } else {
      nodes.emplace_back(std::move(o));
    }
  }
  json::object out;
  out["nodes"] = std::move(nodes);
  return out;
}

}  // namespace strongroom::broker
