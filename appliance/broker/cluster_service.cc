// The calls other members make on this node's cluster port (ClusterNode::Serve): term, join,
// add, forward, read-index and read-point, each checked against the caller's certificate first
// (cluster_identity.cc), and the audit records of the changes they make.
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "appliance/broker/cluster.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/ipc_server.h"
#include "appliance/broker/join_tokens.h"
#include "appliance/core/request.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::broker {

using namespace cluster_internal;  // NOLINT(build/namespaces): the cluster's own helpers

std::string ClusterNode::Serve(const raft::PeerIdentity& peer, std::string_view request) {
  if (!ready_.load(std::memory_order_acquire)) {
    return core::Serialize(Failure("the node is still starting"));
  }
  auto req = core::ParseObject(request);
  if (!req.ok()) return core::Serialize(Failure("malformed request"));
  auto op = core::GetString(*req, "op");
  json::object answer;
  if (!op.ok() || !op->has_value()) {
    answer = Failure("no op");
  } else if (std::string refusal = RefuseImpostor(peer, **op, *req); !refusal.empty()) {
    answer = Failure(refusal);
  } else if (**op == "term") {
    answer["ok"] = true;
    answer["term"] = std::to_string(raft_->Term());
    core::Core* core = core_.load();
    // Whether this node could serve if it led (a hand-over passes a sealed node over).
    answer["sealed"] = core == nullptr || core->awaiting_cluster() || core->sealed();
  } else if (**op == "refused-sets") {
    return ServeRefusedSets();  // any member that has caught up answers (AskRefusedSets)
  } else if (**op == "read-point") {
    // Any node may be asked; only the leader answers (LeaderCheck::PointFor checks it).
    return ServeReadPoint(peer, *req);
  } else if (core_.load() == nullptr) {
    answer = Failure("the node is still starting");
  } else if (!raft_->IsLeader()) {
    answer = Failure("not the leader");
    if (auto leader = CurrentLeader()) answer["leader_cluster_addr"] = leader->cluster_addr;
  } else if (**op == "join") {
    return ServeJoin(*req, peer);
  } else if (**op == "add") {
    return ServeAdd(*req, peer);
  } else if (**op == "forward") {
    return ServeForward(*req);
  } else if (**op == "read-index") {
    return ServeReadIndex();
  } else {
    answer = Failure("unknown op");
  }
  return core::Serialize(answer);
}

absl::Status ClusterNode::AuditChangeRequest(const core::AuditSystemEvent& event) {
  core::Core* core = core_.load();
  if (core == nullptr) return absl::UnavailableError("the node is still starting");
  absl::Status s = core->audit().LogSystemEvent(event);
  if (!s.ok()) {
    LogError("raft: %s (%s) not carried out: no audit device could record it", event.path,
             event.request_id);
  }
  return s;
}

absl::Status ClusterNode::AuditChangeResponse(core::AuditSystemEvent event,
                                              const json::object& result, std::string_view error) {
  core::Core* core = core_.load();
  if (core == nullptr) return absl::UnavailableError("the node is still starting");
  event.is_response = true;
  event.response_data = result;
  event.error = std::string(error);
  return core->audit().LogSystemEvent(event);
}

std::string ClusterNode::MemberNamed(std::string_view node_id) {
  for (const auto& peer : raft_->Configuration()) {
    if (DecodePeer(peer.address).node_id == node_id) {
      return absl::StrCat("a server named \"", Av(node_id),
                          "\" is already a member; remove it (sys/storage/raft/remove-peer) first");
    }
  }
  return "";
}

std::string ClusterNode::ServeJoin(const json::object& req, const raft::PeerIdentity& peer) {
  core::Core* core = core_.load();
  if (core->sealed()) return core::Serialize(Failure("the leader is sealed"));
  // The KEKs leave only once the request record is written, and reach the joining node only
  // once the response record is: the export is in this node's audit chain, or does not happen.
  core::AuditSystemEvent event = ChangeEvent(kJoinPath, "kek-export");
  // Which certificate the keys go to (the caller's, verified by the cluster CA).
  event.data["certificate_sha256"] = peer.fingerprint;
  event.data["public_key_sha256"] = peer.public_key_sha256;
  auto name = core::GetString(req, "node_id");
  auto point = UnB64(req, "transport_key");
  auto token = core::GetString(req, "join_token");
  std::string refusal;
  if (!name.ok() || !name->has_value() || !point.ok() || !token.ok()) {
    refusal = "join needs node_id and transport_key";
  } else if (absl::Status s = CheckPeer(PeerInfo{"x:1", **name, "https://x"}); !s.ok()) {
    refusal = std::string(Sv(s.message()));
  } else if (token->value_or("").size() > kMaxJoinTokenBytes) {
    event.data["node_id"] = **name;
    refusal = "the join token is not one this cluster issued";
  } else {
    event.data["node_id"] = **name;
    if (std::string id = JoinTokens::IdOf(token->value_or("")); !id.empty()) {
      event.data["join_token_id"] = id;
    }
  }
  if (!AuditChangeRequest(event).ok()) {
    return core::Serialize(Failure("the leader could not record the join in its audit log"));
  }
  // The operator's consent (a join credential for this node id, used once) before any KEK is
  // wrapped; a name already in use gets no keys either.
  if (refusal.empty()) refusal = AdmitJoin(token->value_or(""), **name, peer.public_key_sha256);
  if (!refusal.empty()) {
    (void)AuditChangeResponse(std::move(event), {}, refusal);
    return core::Serialize(Failure(refusal));
  }
  auto wrapped = seal_.load()->WrapKeksForPeer(*point, **name);
  if (!wrapped.ok()) {
    LogError("raft: cannot wrap the KEKs for joining node %s: %s", **name,
             wrapped.status().message());
    (void)AuditChangeResponse(std::move(event), {}, "the leader cannot wrap its keys");
    return core::Serialize(Failure("the leader cannot wrap its keys; see its log"));
  }
  json::object result;
  result["keks_wrapped"] = wrapped->blobs.size();
  // Which key of the joining node's token they were wrapped for (the leader's own record).
  result["transport_key_sha256"] = JoinTokens::Sha256Hex(*point);
  if (!AuditChangeResponse(std::move(event), result, "").ok()) {
    LogError(
        "raft: the KEKs wrapped for joining node %s are not sent: no audit device could "
        "record the export",
        **name);
    return core::Serialize(Failure("the leader could not record the join in its audit log"));
  }
  LogInfo("raft: sent the cluster's KEKs, wrapped for its token, to joining node %s", **name);
  json::object o;
  o["ok"] = true;
  o["ephemeral_key"] = B64(wrapped->ephemeral_point);
  json::array keks;
  for (const auto& b : wrapped->blobs) {
    keks.emplace_back(B64(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())));
  }
  o["keks"] = std::move(keks);
  // What the cluster refuses, which the joiner holds until it has caught up (RefreshRefused).
  if (json::object sets = RefusedSetsAnswer(); sets.contains("index"))
    o["refused"] = std::move(sets);
  return core::Serialize(o);
}

std::string ClusterNode::ServeAdd(const json::object& req, const raft::PeerIdentity& peer) {
  // As a join: the membership change happens only once its request record is written.
  if (core_.load()->sealed()) return core::Serialize(Failure("the leader is sealed"));
  core::AuditSystemEvent event = ChangeEvent(kJoinPath, "add-voter");
  PeerInfo p;
  auto name = core::GetString(req, "node_id");
  auto cluster = core::GetString(req, "cluster_addr");
  auto api = core::GetString(req, "api_addr");
  auto token = core::GetString(req, "join_token");
  std::string refusal;
  if (!name.ok() || !cluster.ok() || !api.ok() || !token.ok() || !*name || !*cluster || !*api) {
    refusal = "add needs node_id, cluster_addr and api_addr";
  } else if (token->value_or("").size() > kMaxJoinTokenBytes) {
    refusal = "the join token is not one this cluster issued";
  } else {
    p = {**cluster, **name, **api};
    if (absl::Status s = CheckPeer(p); !s.ok()) {
      refusal = std::string(Sv(s.message()));
    } else {
      event.data["node_id"] = p.node_id;
      event.data["cluster_addr"] = p.cluster_addr;
      event.data["api_addr"] = p.api_addr;
      refusal = AddRefusal(p.node_id, token->value_or(""), peer.public_key_sha256);
    }
  }
  if (!AuditChangeRequest(event).ok()) {
    return core::Serialize(Failure("the leader could not record the change in its audit log"));
  }
  if (!refusal.empty()) {
    (void)AuditChangeResponse(std::move(event), {}, refusal);
    return core::Serialize(Failure(refusal));
  }
  absl::Status s = raft_->AddVoter(raft::RaftStorage::IdFor(p.node_id), EncodePeer(p));
  json::object result;
  if (s.ok()) result["voter"] = true;
  (void)AuditChangeResponse(std::move(event), result, Sv(s.message()));
  if (!s.ok()) return core::Serialize(Failure(Sv(s.message())));
  // The admission is spent: adding this id again needs a new credential.
  if (absl::Status c = JoinTokens(core_.load()->barrier()).ClearAdmission(p.node_id); !c.ok()) {
    LogWarn("raft: node %s is a voter, but its admission stays recorded: %s", p.node_id,
            c.message());
  }
  LogInfo("raft: node %s (%s) is a voter now", p.node_id, p.cluster_addr);
  json::object o;
  o["ok"] = true;
  return core::Serialize(o);
}

std::string ClusterNode::ServeForward(const json::object& req) {
  auto bytes = UnB64(req, "request");
  ipc::Request forwarded;
  if (!bytes.ok() || !forwarded.ParseFromString(*bytes)) {
    return core::Serialize(Failure("malformed forwarded request"));
  }
  // Only the active node (tables reloaded in the term it leads) answers, and its core confirms
  // the answer before it goes back (ConfirmAnswer). A refusal means nothing was done: the
  // standby may redirect.
  if (active_term_.load() == 0) {
    json::object o = Failure("not the active node");
    if (auto leader = CurrentLeader(); leader && !leader->self) {
      o["leader_cluster_addr"] = leader->cluster_addr;
    }
    return core::Serialize(o);
  }
  ipc::Response r = IpcServer::Process(core_.load(), forwarded, options_.json_limits);
  json::object o;
  o["ok"] = true;
  o["response"] = B64(r.SerializeAsString());
  return core::Serialize(o);
}

}  // namespace strongroom::broker
