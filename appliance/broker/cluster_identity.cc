// Node identity on the cluster port: a peer is who its cluster certificate says (cluster.h).
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "appliance/broker/cluster.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/join_tokens.h"
#include "appliance/core/json.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {

using cluster_internal::Failure;
using cluster_internal::ValidNodeId;

namespace json = core::json;

std::string EncodePeer(const PeerInfo& p) {
  return absl::StrCat(p.cluster_addr, "|", p.node_id, "|", p.api_addr);
}

PeerInfo DecodePeer(std::string_view address) {
  std::vector<std::string> parts = absl::StrSplit(Av(address), absl::MaxSplits('|', 2));
  PeerInfo p;
  if (!parts.empty()) p.cluster_addr = parts[0];
  if (parts.size() > 1) p.node_id = parts[1];
  if (parts.size() > 2) p.api_addr = parts[2];
  return p;
}

absl::Status CheckRaftPeer(uint64_t raft_id, std::string_view address,
                           const raft::PeerIdentity& peer) {
  if (peer.node_id.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("its certificate names no node id (", Av(raft::kNodeUriPrefix), "<node_id>)"));
  }
  if (raft_id != raft::RaftStorage::IdFor(peer.node_id)) {
    return absl::PermissionDeniedError(absl::StrCat("raft id ", raft_id, " is not that of node \"",
                                                    peer.node_id,
                                                    "\", which its certificate names"));
  }
  const PeerInfo p = DecodePeer(address);
  if (p.node_id != peer.node_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "its address names another node than \"", peer.node_id, "\", which its certificate names"));
  }
  if (!peer.Reaches(p.cluster_addr)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "its address is not at a host its certificate (node \"", peer.node_id, "\") names"));
  }
  return absl::OkStatus();
}

absl::Status CheckMemberPeer(ClusterNode* node, uint64_t raft_id, std::string_view address,
                             const raft::PeerIdentity& peer) {
  RETURN_IF_ERROR(CheckRaftPeer(raft_id, address, peer));
  if (std::string why = node->RefusedIdentity(peer, /*removed_too=*/true, /*pin_too=*/true);
      !why.empty()) {
    return absl::PermissionDeniedError(why);
  }
  return absl::OkStatus();
}

namespace {

// The refused sets as the node last knew them, kept beside its Raft directory (not in fsm/, which
// is rebuilt at every start): "removed <node id>" and "pin <node id> <key sha256>" lines.
std::string RefusedFile(const std::string& raft_dir) { return raft_dir + "/refused-peers"; }
// Node ids a -raft-recover dropped, one per line, until they are marked removed in replicated
// state.
std::string DroppedFile(const std::string& raft_dir) { return raft_dir + "/recovery-dropped"; }

// Bounds on the sets a file or a member's answer may hold (the real ones are a few entries).
constexpr size_t kMaxRefusedIds = 10000;
constexpr size_t kMaxKeysPerId = 64;
constexpr absl::Duration kRefusedAskTimeout = absl::Milliseconds(500);
constexpr std::chrono::seconds kRefusedAskEvery{2};
// How long a member's answer (or the join answer's sets) is held at most once this node has
// caught up and hears from a leader, when the store does not reach its index.
constexpr std::chrono::seconds kVouchedFor{10};

// A member's "refused-sets" answer, checked: "" and the sets, or why it cannot be used.
std::string ParseRefusedSets(const json::object& answer, uint64_t* index,
                             std::set<std::string>* removed,
                             std::map<std::string, std::set<std::string>>* pinned) {
  const auto* at = answer.if_contains("index");
  if (at == nullptr || !at->is_string() || !absl::SimpleAtoi(Av(at->as_string()), index)) {
    return "no index";
  }
  const auto* ids = answer.if_contains("removed");
  const auto* pins = answer.if_contains("pinned");
  if (ids == nullptr || !ids->is_array() || pins == nullptr || !pins->is_object()) {
    return "no removed list or pinned object";
  }
  if (ids->as_array().size() > kMaxRefusedIds || pins->as_object().size() > kMaxRefusedIds) {
    return "too many entries";
  }
  for (const auto& id : ids->as_array()) {
    if (!id.is_string() || !ValidNodeId(id.as_string())) return "a removed node id is not valid";
    removed->emplace(id.as_string());
  }
  for (const auto& [id, keys] : pins->as_object()) {
    if (!ValidNodeId(id) || !keys.is_array() || keys.as_array().size() > kMaxKeysPerId) {
      return "a pinned entry is not valid";
    }
    std::set<std::string>& set = (*pinned)[std::string(id)];
    for (const auto& k : keys.as_array()) {
      if (!k.is_string() || !ValidNodeId(k.as_string())) return "a pinned key is not valid";
      set.emplace(k.as_string());
    }
  }
  return "";
}

std::vector<std::string> ReadDropped(const std::string& raft_dir) {
  std::vector<std::string> ids;
  std::ifstream in(DroppedFile(raft_dir));
  for (std::string line; ids.size() < 10000 && std::getline(in, line);) {
    if (ValidNodeId(line)) ids.push_back(line);
  }
  return ids;
}

}  // namespace

void ClusterNode::NoteDropped(const std::vector<raft::Peer>& current,
                              const std::vector<raft::Peer>& forced) {
  std::string text;
  std::vector<std::string> dropped;
  for (const raft::Peer& c : current) {
    bool kept = false;
    for (const raft::Peer& f : forced) kept |= f.id == c.id;
    if (kept) continue;
    const std::string id = DecodePeer(c.address).node_id;
    if (!ValidNodeId(id)) continue;
    dropped.push_back(id);
    absl::StrAppend(&text, id, "\n");
  }
  if (dropped.empty()) return;
  {
    std::ofstream out(DroppedFile(options_.path), std::ios::binary | std::ios::app);
    out << text;
    out.flush();
    if (!out) {
      LogError(
          "raft recovery: cannot write %s; the dropped node ids are refused until this "
          "process ends only",
          DroppedFile(options_.path));
    }
  }
  std::lock_guard<std::mutex> lock(refused_mu_);
  removed_ids_.insert(dropped.begin(), dropped.end());
  LogWarn(
      "raft recovery: %s dropped from the configuration; refused on the cluster port, and "
      "marked removed once this node is the active node",
      absl::StrJoin(dropped, ", "));
}

void ClusterNode::MarkDropped(core::Core* core) {
  if (core == nullptr || core->sealed() || core->awaiting_cluster() || !raft_->IsLeader()) return;
  const std::vector<std::string> ids = ReadDropped(options_.path);
  if (ids.empty()) return;
  JoinTokens tokens(core->barrier());
  for (const std::string& id : ids) {
    if (absl::Status s = tokens.MarkRemoved(id, core->Now()); !s.ok()) {
      LogWarn("raft: cannot mark node %s (dropped by the recovery) removed yet: %s", id,
              s.message());
      return;
    }
  }
  std::remove(DroppedFile(options_.path).c_str());
  LogInfo("raft: marked %s (dropped by the recovery) removed", absl::StrJoin(ids, ", "));
}

void ClusterNode::LoadRefused() {
  std::ifstream in(RefusedFile(options_.path));
  if (!in && ::access(RefusedFile(options_.path).c_str(), F_OK) == 0) {
    LogWarn(
        "raft: cannot read %s; this node refuses no saved node id or key until it has asked "
        "the cluster",
        RefusedFile(options_.path));
  }
  std::set<std::string> removed;
  std::map<std::string, std::set<std::string>> pinned;
  uint64_t index = 0;
  size_t lines = 0;
  for (std::string line; lines < 100000 && std::getline(in, line); ++lines) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() == 2 && f[0] == "index") {
      if (!absl::SimpleAtoi(f[1], &index)) index = 0;
    } else if (f.size() == 2 && f[0] == "removed" && ValidNodeId(f[1])) {
      removed.insert(f[1]);
    } else if (f.size() == 3 && f[0] == "pin" && ValidNodeId(f[1]) && ValidNodeId(f[2])) {
      pinned[f[1]].insert(f[2]);
    }
  }
  for (std::string& id : ReadDropped(options_.path)) removed.insert(std::move(id));
  std::lock_guard<std::mutex> lock(refused_mu_);
  removed_ids_ = std::move(removed);
  pinned_ = std::move(pinned);
  refused_index_ = index;
}

void ClusterNode::RefreshRefused() {
  if (!raft_) return;
  std::lock_guard<std::mutex> refresh(refresh_mu_);  // one read-and-swap at a time
  core::Core* core = core_.load();
  // A join replays the whole log: a node removed and re-admitted since would be refused for a
  // moment, and the leader's promotion of this node can fail on that moment. So a joining node
  // holds the leader's sets (from the join answer) until it has caught up.
  const bool caught_up = core != nullptr && !core->awaiting_cluster() && joining_.load() == 0;
  if (!raft_->HasState()) {
    // In no cluster (yet): nothing to refuse, whatever a former life saved (another cluster's
    // indexes, too), but what the leader of the cluster it is joining refuses.
    if (joining_.load() == 0) TakeRefused({}, {}, 0);
    return;
  }
  // Until this node has caught up, its store says what the cluster said at some index of its
  // past: rebuilt at each start from its last snapshot on, it passes again through every state
  // since (a node removed, then re-admitted). So the sets stay those saved, or a caught-up
  // member's (AskRefusedSets), until then. (Sets taken from such a store made a member refuse
  // a re-admitted node that led, and never catch up.) Later, a store that has not applied all
  // it knows committed may be in such a passing state, and one older than the sets held (a
  // member's) is not taken either.
  if (!caught_up) return;
  const uint64_t committed = raft_->CommitIndex();
  // Read before the lists: they show at least what was applied up to here.
  const uint64_t applied = raft_->AppliedIndex();
  // Not during a restore of a snapshot from the leader: the store would be read after it, with
  // the main loop waiting meanwhile.
  bool take = applied >= committed && !raft_->RestoreUnderWay();
  if (take) {
    // The store is taken once it is as new as the sets held. A member's answer held longer than
    // kVouchedFor (its index beyond what this node applies: a member that lied) gives way to the
    // store too, once this node hears from a leader again.
    const bool hears_leader = raft_->Leader().has_value();
    std::lock_guard<std::mutex> lock(refused_mu_);
    take = applied >= refused_index_ ||
           (refused_vouched_ && hears_leader &&
            std::chrono::steady_clock::now() - refused_vouched_at_ >= kVouchedFor);
  }
  if (take && !TakeStoreRefused(applied, /*keep_vouched_if_leader_refused=*/true)) return;
  PinSelf(core);
  MarkDropped(core);
}

bool ClusterNode::TakeStoreRefused(uint64_t applied, bool keep_vouched_if_leader_refused) {
  std::set<std::string> removed;
  std::map<std::string, std::set<std::string>> pinned;
  // Key names only (the values are the barrier's ciphertext): readable while sealed.
  auto ids = raft_->List(JoinTokens::kRemovedPrefix);
  auto nodes = raft_->List(JoinTokens::kPinnedPrefix);
  if (!ids.ok() || !nodes.ok()) return false;
  for (std::string& id : *ids) {
    if (!id.empty() && id.back() != '/') removed.insert(std::move(id));
  }
  for (const std::string& dir : *nodes) {
    if (dir.size() < 2 || dir.back() != '/') continue;
    auto fps = raft_->List(absl::StrCat(JoinTokens::kPinnedPrefix, dir));
    if (!fps.ok()) return false;
    std::set<std::string>& set = pinned[dir.substr(0, dir.size() - 1)];
    for (std::string& fp : *fps) set.insert(std::move(fp));
  }
  if (keep_vouched_if_leader_refused) {
    // A store still passing through the removal of the leader it hears (lagging behind its
    // re-admission) would cut this node off again: a member's answer stands until it is past.
    const auto leader = raft_->Leader();
    std::lock_guard<std::mutex> lock(refused_mu_);
    if (refused_vouched_ && leader && removed.count(DecodePeer(leader->address).node_id) != 0) {
      return true;
    }
  }
  TakeRefused(std::move(removed), std::move(pinned), applied);
  return true;
}

bool ClusterNode::TakeRefused(std::set<std::string> removed,
                              std::map<std::string, std::set<std::string>> pinned, uint64_t index,
                              bool vouched) {
  for (std::string& id : ReadDropped(options_.path)) removed.insert(std::move(id));
  bool changed = false;
  bool save = false;
  {
    std::lock_guard<std::mutex> lock(refused_mu_);
    changed = removed != removed_ids_ || pinned != pinned_;
    // This node's own knowledge is what it saves: the first sets it reads after a member's
    // answer are saved even when they are the same (the file holds older ones).
    save = !vouched && (changed || refused_vouched_);
    refused_index_ = index;
    if (vouched && !refused_vouched_) refused_vouched_at_ = std::chrono::steady_clock::now();
    refused_vouched_ = vouched;
    if (changed) {
      removed_ids_ = removed;
      pinned_ = pinned;
    }
  }
  // Connections admitted before the change are checked again: a removed node's are closed.
  if (changed) raft_->RecheckPeers();
  if (!save) return changed;
  std::string text = absl::StrCat("index ", index, "\n");
  for (const std::string& id : removed) absl::StrAppend(&text, "removed ", id, "\n");
  for (const auto& [id, keys] : pinned) {
    for (const std::string& k : keys) absl::StrAppend(&text, "pin ", id, " ", k, "\n");
  }
  const std::string file = RefusedFile(options_.path);
  // Written, synced, then renamed over the old one: a crash leaves the old or the new file.
  const int fd = ::open((file + ".tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const bool saved = fd >= 0 &&
                     ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                     ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!saved || std::rename((file + ".tmp").c_str(), file.c_str()) != 0) {
    LogWarn("raft: cannot save the refused node ids and keys to %s", file);
  }
  return changed;
}

void ClusterNode::AskRefusedSets() {
  if (!raft_ || !raft_->HasState() || std::chrono::steady_clock::now() < next_refused_ask_) {
    return;
  }
  core::Core* current = core_.load();
  // A node that has caught up and hears from a leader it does not refuse holds what it needs.
  // One that hears from none, or knows of a leader it refuses, may be refusing the leader (its
  // store passing through a removal the log lifts later).
  if (current != nullptr && !current->awaiting_cluster() && joining_.load() == 0) {
    const auto leader = raft_->Leader();
    if (leader) {
      raft::PeerIdentity id;
      id.node_id = DecodePeer(leader->address).node_id;
      if (RefusedIdentity(id, /*removed_too=*/true, /*pin_too=*/false).empty()) return;
    }
  }
  // Every member this node does not refuse is asked, and the newest answer counts: one member,
  // cut off from the others, may answer with old sets.
  bool found = false;
  uint64_t best_index = 0;
  std::string best_from;
  std::set<std::string> best_removed;
  std::map<std::string, std::set<std::string>> best_pinned;
  for (const raft::Peer& member : raft_->Configuration()) {
    const PeerInfo p = DecodePeer(member.address);
    if (p.node_id == options_.node_id || !ValidNodeId(p.node_id)) continue;
    raft::PeerIdentity asked;
    asked.node_id = p.node_id;
    if (!RefusedIdentity(asked, /*removed_too=*/true, /*pin_too=*/false).empty()) continue;
    json::object ask;
    ask["op"] = "refused-sets";
    raft::PeerIdentity server;
    auto answer = Call(p.cluster_addr, ask, kRefusedAskTimeout, &server);
    if (!answer.ok()) continue;
    // The answer counts only from the member asked, with the key it joined with: another
    // certificate at its address (a removed node's, one for a reused host) is not believed.
    const std::string refused =
        server.node_id != p.node_id
            ? absl::StrCat("its certificate names node \"", server.node_id, "\"")
            : RefusedIdentity(server, /*removed_too=*/true, /*pin_too=*/true);
    if (!refused.empty()) {
      LogWarn("raft: the refused sets from %s (member %s) are not taken: %s", p.cluster_addr,
              p.node_id, refused);
      continue;
    }
    auto ok = core::GetBool(*answer, "ok");
    if (!ok.ok() || !ok->value_or(false)) continue;  // not caught up itself, or refuses this node
    uint64_t index = 0;
    std::set<std::string> removed;
    std::map<std::string, std::set<std::string>> pinned;
    if (std::string bad = ParseRefusedSets(*answer, &index, &removed, &pinned); !bad.empty()) {
      LogWarn("raft: node %s answered refused sets this node cannot use: %s", p.node_id, bad);
      continue;
    }
    if (found && index <= best_index) continue;
    found = true;
    best_index = index;
    best_from = p.node_id;
    best_removed = std::move(removed);
    best_pinned = std::move(pinned);
  }
  next_refused_ask_ = std::chrono::steady_clock::now() + kRefusedAskEvery;
  if (!found) return;
  std::lock_guard<std::mutex> refresh(refresh_mu_);
  {
    std::lock_guard<std::mutex> lock(refused_mu_);
    if (best_index < refused_index_) return;  // what this node holds is newer
    // A member's answer only lifts refusals this node holds (a removal, or a pin the answer
    // lets another key join): it never makes this node refuse a member, so no answer can cut
    // it off from the cluster. What it refuses anew it learns from its store.
    std::set<std::string> lifted_removed;
    for (const std::string& id : removed_ids_) {
      if (best_removed.count(id) != 0) lifted_removed.insert(id);
    }
    std::map<std::string, std::set<std::string>> lifted_pinned;
    for (const auto& [id, keys] : pinned_) {
      auto answered = best_pinned.find(id);
      if (answered == best_pinned.end()) continue;  // the answer pins nothing for it
      std::set<std::string> both = keys;
      both.insert(answered->second.begin(), answered->second.end());
      lifted_pinned[id] = std::move(both);
    }
    best_removed = std::move(lifted_removed);
    best_pinned = std::move(lifted_pinned);
  }
  if (TakeRefused(std::move(best_removed), std::move(best_pinned), best_index,
                  /*vouched=*/true)) {
    LogInfo(
        "raft: took the refused node ids and keys as of index %d from node %s (this node held "
        "older ones, and has not caught up or hears from no leader)",
        best_index, best_from);
  }
}

std::string ClusterNode::ServeRefusedSets() {
  core::Core* core = core_.load();
  // Caught up and hearing from a leader (or leading): its sets are the cluster's.
  if (core == nullptr || core->awaiting_cluster() || joining_.load() != 0 || !raft_->Leader()) {
    return core::Serialize(Failure("this node has not caught up with the cluster"));
  }
  return core::Serialize(RefusedSetsAnswer());
}

json::object ClusterNode::RefusedSetsAnswer() {
  json::array removed;
  json::object pinned;
  std::lock_guard<std::mutex> lock(refused_mu_);
  if (removed_ids_.size() > kMaxRefusedIds || pinned_.size() > kMaxRefusedIds) {
    return Failure("too many refused node ids to send");
  }
  for (const std::string& id : removed_ids_) removed.emplace_back(id);
  for (const auto& [id, keys] : pinned_) {
    if (keys.size() > kMaxKeysPerId) return Failure("too many keys pinned for one node id to send");
    json::array list;
    for (const std::string& k : keys) list.emplace_back(k);
    pinned[id] = std::move(list);
  }
  json::object answer;
  answer["ok"] = true;
  answer["index"] = std::to_string(refused_index_);
  answer["removed"] = std::move(removed);
  answer["pinned"] = std::move(pinned);
  return answer;
}

bool ClusterNode::TakeJoinRefused(const json::object& join_answer, const std::string& from) {
  const auto* sets = join_answer.if_contains("refused");
  if (sets == nullptr || !sets->is_object()) return false;  // a leader of an older version
  uint64_t index = 0;
  std::set<std::string> removed;
  std::map<std::string, std::set<std::string>> pinned;
  if (std::string bad = ParseRefusedSets(sets->as_object(), &index, &removed, &pinned);
      !bad.empty()) {
    LogWarn("raft: the leader's refused sets in its join answer cannot be used: %s", bad);
    return false;
  }
  std::lock_guard<std::mutex> refresh(refresh_mu_);
  TakeRefused(std::move(removed), std::move(pinned), index, /*vouched=*/true);
  LogInfo(
      "raft: refusing the node ids and keys the leader at %s refuses (index %d) until this "
      "node has caught up",
      from, index);
  return true;
}

void ClusterNode::PinSelf(core::Core* core) {
  if (self_pinned_ || own_key_sha256_.empty() || core == nullptr || core->sealed() ||
      core->awaiting_cluster() || !raft_->IsLeader() || absl::Now() < next_self_pin_) {
    return;
  }
  absl::Status s = JoinTokens(core->barrier()).Pin(options_.node_id, own_key_sha256_, core->Now());
  if (!s.ok()) {
    next_self_pin_ = absl::Now() + absl::Seconds(5);
    LogWarn("raft: cannot pin this node's own cluster key yet: %s", s.message());
    return;
  }
  self_pinned_ = true;
}

std::string ClusterNode::RefusedIdentity(const raft::PeerIdentity& peer, bool removed_too,
                                         bool pin_too) {
  std::lock_guard<std::mutex> lock(refused_mu_);
  if (removed_too && removed_ids_.count(peer.node_id) != 0) {
    return absl::StrCat("node \"", peer.node_id,
                        "\" was removed from the cluster; it comes back only through a join "
                        "with a join token minted for it since");
  }
  auto pins = pinned_.find(peer.node_id);
  if (pin_too && pins != pinned_.end() && !pins->second.empty() &&
      pins->second.count(peer.public_key_sha256) == 0) {
    return absl::StrCat("the certificate's key (SHA-256 ", peer.public_key_sha256.substr(0, 16),
                        "...) is not the key pinned for node \"", peer.node_id,
                        "\" (the one it joined with)");
  }
  return "";
}

absl::Status CheckOwnCertificate(const std::string& cert_file, const PeerInfo& self) {
  auto id = raft::IdentityOfCertificateFile(cert_file);
  if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat("raft: ", id.status().message()));
  if (id->node_id != self.node_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raft: the cluster certificate \"", cert_file, "\" names node id \"", id->node_id,
        "\", not this node's node_id \"", self.node_id, "\" (it needs the subjectAltName URI ",
        Av(raft::kNodeUriPrefix), self.node_id, "; packaging/cluster-certs.sh issues it)"));
  }
  if (!id->Reaches(self.cluster_addr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: the cluster certificate \"", cert_file,
                     "\" does not name the host of cluster_addr \"", self.cluster_addr,
                     "\" (a DNS or IP subjectAltName); its peers would refuse this node"));
  }
  return absl::OkStatus();
}

std::string ClusterNode::RefuseImpostor(const raft::PeerIdentity& peer, std::string_view op,
                                        const json::object& req) {
  if (peer.node_id.empty()) {
    LogWarn("raft: refused a service call from a peer whose certificate names no node id");
    return absl::StrCat("the caller's cluster certificate names no node id (",
                        Av(raft::kNodeUriPrefix), "<node_id>)");
  }
  // A removed node id, and another certificate than the one a node id joined with, get nothing
  // but a join (whose credential check decides; its use re-pins); an add is refused for a
  // removed id by its own check, which a fresh credential may pass.
  if (op != "join") {
    // An add carrying a credential is decided by it (AddRefusal: its use re-pins the key); an
    // add without one must come from the key its node id joined with, and is decided by
    // AddRefusal for a removed id.
    auto token = core::GetString(req, "join_token");
    const bool with_credential = op == "add" && token.ok() && !token->value_or("").empty();
    if (op == "add") RefreshRefused();  // its join re-pinned a moment ago (the main loop's lag)
    if (std::string why =
            RefusedIdentity(peer, /*removed_too=*/op != "add", /*pin_too=*/!with_credential);
        !why.empty()) {
      LogWarn("raft: refused a service call (%s) from node %s: %s", Av(op), peer.node_id, why);
      return why;
    }
  }
  if (op != "join" && op != "add") return "";
  auto name = core::GetString(req, "node_id");
  auto cluster = core::GetString(req, "cluster_addr");
  std::string refusal;
  if (name.ok() && name->has_value() && **name != peer.node_id) {
    refusal = absl::StrCat("node_id is not \"", peer.node_id,
                           "\", which the caller's cluster certificate names");
  } else if (op == "add" && cluster.ok() && cluster->has_value() && !peer.Reaches(**cluster)) {
    refusal =
        absl::StrCat("cluster_addr is not at a host the caller's cluster certificate (node \"",
                     peer.node_id, "\") names");
  }
  if (refusal.empty()) return "";
  LogWarn("raft: refused a service call (%s) from node %s: %s", Av(op), peer.node_id, refusal);
  if (core_.load() != nullptr) {
    core::AuditSystemEvent event = cluster_internal::ChangeEvent(
        cluster_internal::kJoinPath, op == "join" ? "kek-export" : "add-voter");
    event.data["certificate_node_id"] = peer.node_id;
    if (name.ok() && name->has_value()) {
      // Escaped, then cut: the claim is the caller's, and a cut through a UTF-8 sequence would
      // make the record unwritable (the audit devices refuse invalid UTF-8).
      event.data["node_id"] = absl::CHexEscape(Av((*name)->substr(0, 64)));
    }
    if (!AuditChangeRequest(event).ok() ||
        !AuditChangeResponse(std::move(event), {}, refusal).ok()) {
      LogError("raft: the refused service call (%s) from node %s is not in the audit log", Av(op),
               peer.node_id);
    }
  }
  return refusal;
}

}  // namespace strongroom::broker
