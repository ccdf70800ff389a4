// ClusterNode's join credentials (join_tokens.h): minting on the active node, the leader's
// check before any KEK is wrapped (ServeJoin) and before a voter is added (ServeAdd), and the
// joiner's credential file (retry_join).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "appliance/broker/cluster.h"
#include "appliance/broker/cluster_internal.h"
#include "appliance/broker/join_tokens.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {

using cluster_internal::ValidNodeId;

namespace {}  // namespace

absl::StatusOr<core::MintedJoinToken> ClusterNode::MintJoinToken(std::string_view node_id,
                                                                 int64_t ttl_seconds) {
  if (!ValidNodeId(node_id)) {
    return absl::InvalidArgumentError("node_id must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  core::Core* core = core_.load();
  if (core == nullptr) return absl::UnavailableError("the node is still starting");
  ASSIGN_OR_RETURN(
      JoinTokens::Minted m,
      JoinTokens(core->barrier()).Mint(node_id, absl::Seconds(ttl_seconds), core->Now()));
  LogInfo("raft: minted join token %s for node id %s (expires %s)", m.id, std::string(node_id),
          core::FormatRfc3339Nano(m.expires));
  core::MintedJoinToken out;
  out.token = std::move(m.token);
  out.id = std::move(m.id);
  out.expires_unix = absl::ToUnixSeconds(m.expires);
  out.ttl_seconds = ttl_seconds;
  return out;
}

std::string ClusterNode::AdmitJoin(std::string_view token, std::string_view node_id,
                                   std::string_view key_sha256) {
  std::lock_guard<std::mutex> lock(join_mu_);
  core::Core* core = core_.load();
  const uint64_t term = raft_->LeaderTerm();
  if (term == 0) return "not the leader";
  // Everything committed before (another leader's use of this credential included) is applied
  // here before the check.
  if (absl::Status s = raft_->Barrier(); !s.ok()) {
    return absl::StrCat("the leader could not check the join token: ", s.message());
  }
  JoinTokens tokens(core->barrier());
  auto checked = tokens.Check(token, node_id, core->Now());
  if (!checked.ok()) {
    if (absl::IsPermissionDenied(checked.status())) return std::string(checked.status().message());
    LogError("raft: cannot check the join token of node %s: %s", std::string(node_id),
             checked.status().message());
    return "the leader could not check the join token; see its log";
  }
  // A name already in use gets no keys: the node would be refused when it asks to be added.
  if (std::string member = MemberNamed(node_id); !member.empty()) return member;
  (void)raft::RaftStorage::TakeThreadWrites();
  absl::Status used = tokens.Consume(token, node_id, key_sha256, core->Now());
  const raft::RaftStorage::ThreadWrites writes = raft::RaftStorage::TakeThreadWrites();
  if (!used.ok()) {
    return absl::StrCat("the leader could not record the join token's use: ", used.message());
  }
  // Only a write committed in the term the check was made in shows that no other leader used
  // the credential meanwhile (join_tokens.h).
  if (writes.failed || writes.committed_term != term) {
    return "the leadership changed while the join token was checked; nothing was wrapped (the "
           "token may be spent: mint a new one)";
  }
  LogInfo("raft: join token %s admitted node id %s", *checked, std::string(node_id));
  return "";
}

std::string ClusterNode::AddRefusal(std::string_view node_id, std::string_view token,
                                    std::string_view key_sha256) {
  core::Core* core = core_.load();
  // A removal or a credential's use committed under an earlier leader is applied here first.
  if (absl::Status s = raft_->Barrier(); !s.ok()) {
    return absl::StrCat("the leader could not check the node's admission: ", s.message());
  }
  auto why = JoinTokens(core->barrier()).AddRefusal(node_id);
  if (!why.ok()) {
    LogError("raft: cannot check the admission of node %s: %s", std::string(node_id),
             why.status().message());
    return "the leader could not check the node's admission; see its log";
  }
  if (why->empty()) return MemberNamed(node_id);
  if (token.empty()) return *why;
  return AdmitJoin(token, node_id, key_sha256);
}

absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the join token file ", path, ": ", std::strerror(errno)));
  }
  std::string buf(4096, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);
  std::string token(absl::StripAsciiWhitespace(buf));
  if (token.empty() || token.size() > kMaxJoinTokenBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("the join token file ", path, " holds no join token"));
  }
  return token;
}

}  // namespace strongroom::broker
