// Node identity on the cluster port: a peer is who its cluster certificate says (cluster.h).
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/broker/cluster.h"
#include "appliance/core/json.h"
#include "base/log.h"
#include "base/strings.h"

namespace strongroom::broker {

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
    core::AuditSystemEvent event;
    event.request_id = core::NewUuid();
    event.path = "sys/storage/raft/join";
    event.data["step"] = op == "join" ? "kek-export" : "add-voter";
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
