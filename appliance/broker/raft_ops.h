// The operations endpoints over Raft, in Vault's shapes (ClusterNode's part of core::Cluster):
//
//   sys/storage/raft/autopilot/state   every server of the configuration: last contact and
//       last index as the leader knows them (RaftStorage::Progress), healthy, voter or not;
//       the cluster's health and failure tolerance. A server is healthy as Vault's autopilot
//       defaults have it: the leader heard from it within last_contact_threshold (10 s), in
//       this term, and it trails the leader's log by at most max_trailing_logs (1000) entries.
//       healthy: every server is; failure_tolerance: healthy voters beyond a quorum.
//   sys/ha-status   this node (the active one) and the members it heard from in its term.
//
// Both answer on the active node (a standby forwards them, as every request it does not serve
// itself). What strongroom does not know is reported as Vault reports a default: node_status
// "alive" for every member of the configuration (Vault marks a server "left" only after its
// dead-server threshold, 24 h by default), the version of members other than this one "" (the
// members do not tell one another their versions).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/time/time.h"

namespace strongroom::broker {

inline constexpr uint64_t kLastContactThresholdMs = 10'000;
inline constexpr uint64_t kMaxTrailingLogs = 1000;

// A Go time.Duration's String() for a whole number of milliseconds: "0s", "516ms", "1.5s",
// "2m0s", "1h0m3.25s".
std::string GoDurationMs(uint64_t ms);

// When each server's health (healthy or not, in which leader term) last changed, as this node
// saw it at the times it was asked: autopilot's stable_since.
class HealthHistory {
 public:
  absl::Time Since(uint64_t id, bool healthy, uint64_t term, absl::Time now);
  // When this node first saw server `id` without any contact in `term` (last_contact of a server
  // the leader has not heard from since it leads: at least that long).
  absl::Time Uncontacted(uint64_t id, uint64_t term, absl::Time now);

 private:
  struct Entry {
    bool healthy = false;
    uint64_t term = 0;
    absl::Time since;
  };
  std::mutex mu_;
  std::map<uint64_t, Entry> entries_;      // cleared past 1024 (members come and go)
  std::map<uint64_t, Entry> uncontacted_;  // likewise
};

}  // namespace strongroom::broker
