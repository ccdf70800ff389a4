#include "appliance/core/core.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "appliance/core/mount_entry.h"
#include "appliance/core/shamir.h"
#include "appliance/core/version_history.h"
#include "appliance/engines/identity_backend.h"
#include "appliance/engines/sys_backend.h"
#include "appliance/engines/sys_metrics.h"
#include "appliance/engines/token_backend.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"
#include "base/strings.h"
#include "policy/builtin_policies.h"

namespace strongroom::core {
namespace {

// Physical (not barrier-encrypted) keys: the wrapped keyring and the seal configuration.
constexpr char kKeyringKey[] = "core/keyring";
constexpr char kSealConfigKey[] = "core/seal-config";
// Barrier keys.
constexpr char kClusterKey[] = "core/cluster";

constexpr size_t kRecoveryKeySize = 32;
constexpr size_t kMaxPathBytes = 4096;

// Vault >= 1.17 renders both messages as one multierror string; Agent looks for "invalid token".
constexpr char kInvalidToken[] = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n";
constexpr char kAclDenied[] = "1 error occurred:\n\t* permission denied\n\n";

std::string Sha256Hex(std::span<const uint8_t> b) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(b.data(), b.size(), md);
  std::string out;
  for (uint8_t c : md) absl::StrAppendFormat(&out, "%02x", c);
  return out;
}

absl::Status ValidatePath(absl::string_view path) {
  if (path.size() > kMaxPathBytes) return absl::InvalidArgumentError("path is too long");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f)
      return absl::InvalidArgumentError("path contains control characters");
  }
  if (absl::StrContains(path, "//"))
    return absl::InvalidArgumentError("path contains an empty segment");
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg == "." || seg == "..")
      return absl::InvalidArgumentError("path contains a relative segment");
  }
  return absl::OkStatus();
}

policy::Operation ToPolicyOperation(Operation op) {
  switch (op) {
    case Operation::kRead:
    case Operation::kHead:
      return policy::Operation::kRead;
    case Operation::kList:
      return policy::Operation::kList;
    case Operation::kCreate:
      return policy::Operation::kCreate;
    case Operation::kUpdate:
      return policy::Operation::kUpdate;
    case Operation::kPatch:
      return policy::Operation::kPatch;
    case Operation::kDelete:
      return policy::Operation::kDelete;
  }
  return policy::Operation::kRead;
}

absl::StatusOr<int> QueryCode(const json::object& data, const std::string& key, int def) {
  ASSIGN_OR_RETURN(auto v, GetString(data, key));
  if (!v || v->empty()) return def;
  int n = 0;
  if (!absl::SimpleAtoi(*v, &n) || n < 100 || n > 999) {
    return absl::InvalidArgumentError(absl::StrCat("bad code for ", key, ": ", *v));
  }
  return n;
}

absl::StatusOr<bool> QueryBool(const json::object& data, const std::string& key) {
  auto v = GetBool(data, key);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("bad value for ", key));
  return v->value_or(false);
}

// `rel` (relative to the mount) in `backend`'s canonical spelling. A backend may change letter
// case only: anything else would let it route a request somewhere the ACL never looked.
absl::StatusOr<std::string> NormalizeRelPath(const Backend& backend, const std::string& rel) {
  std::string out = backend.NormalizePath(rel);
  if (!absl::EqualsIgnoreCase(out, rel)) {
    LogError("backend path normalisation changed more than letter case: %s -> %s", rel, out);
    return absl::InternalError("internal error");
  }
  return out;
}

}  // namespace

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kRead:
      return "read";
    case Operation::kList:
      return "list";
    case Operation::kCreate:
      return "create";
    case Operation::kUpdate:
      return "update";
    case Operation::kPatch:
      return "patch";
    case Operation::kDelete:
      return "delete";
    case Operation::kHead:
      return "header";
  }
  return "read";
}

size_t CredentialOffsetInPath(std::string_view path) {
  static constexpr std::string_view kForms[] = {
      "auth/token/lookup/",         "auth/token/renew/",           "auth/token/revoke/",
      "auth/token/revoke-orphan/",  "auth/token/lookup-accessor/", "auth/token/renew-accessor/",
      "auth/token/revoke-accessor/"};
  const absl::string_view p(path.data(), path.size());
  for (std::string_view form : kForms) {
    if (p.size() > form.size() &&
        absl::StartsWithIgnoreCase(p, absl::string_view(form.data(), form.size()))) {
      return form.size();
    }
  }
  return std::string_view::npos;
}

std::string LoggablePath(std::string_view path) {
  const size_t at = CredentialOffsetInPath(path);
  if (at == std::string_view::npos) return std::string(path);
  return absl::StrCat(absl::string_view(path.data(), at), "***");
}

Core::Core(CoreOptions options, storage::Storage* physical, std::unique_ptr<Seal> seal)
    : options_(std::move(options)),
      physical_(physical),
      seal_(std::move(seal)),
      barrier_(physical),
      tokens_(&barrier_, options_.clock, &barrier_),
      policies_(&barrier_),
      identity_(&barrier_, options_.clock),
      audit_(&barrier_, seal_.get(), options_.clock) {
  audit_.set_settings(options_.audit);
  tokens_.SetBatchIssuerCheck([this](const std::string& mount_accessor) {
    std::shared_lock lock(mounts_mu_);
    for (const auto& [path, m] : mounts_) {
      if (m->entry.accessor == mount_accessor) return true;
    }
    return false;
  });
  metrics_ = metrics::DefaultRegistry().AddCollector(
      [this](metrics::Collection& c) { CollectMetrics(c); });
}

Core::~Core() { barrier_.Seal(); }

std::string Core::seal_reason() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  return seal_reason_;
}

void Core::SetSealReason(std::string reason) {
  LogError("staying sealed: %s", reason);
  seal_reason_ = std::move(reason);
}

std::string Core::cluster_name() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  return cluster_name_;
}
std::string Core::cluster_id() const {
  std::lock_guard<std::mutex> lock(state_mu_);
  return cluster_id_;
}

constexpr char kWaitingForCluster[] =
    "waiting for the Raft cluster: this node has not caught up with a leader since it started";

void Core::WaitForCluster() {
  std::lock_guard<std::mutex> lock(state_mu_);
  awaiting_cluster_.store(true);
  seal_reason_ = kWaitingForCluster;
  LogInfo("raft: %s; sealed until it has", kWaitingForCluster);
}

void Core::Start() {
  std::lock_guard<std::mutex> lock(state_mu_);
  auto config = physical_->Get(kSealConfigKey);
  auto wrapped = physical_->Get(kKeyringKey);
  if (!config.ok() || !wrapped.ok()) {
    SetSealReason(absl::StrCat("cannot read storage: ",
                               (!config.ok() ? config.status() : wrapped.status()).message()));
    return;
  }
  initialized_.store(config->has_value() && wrapped->has_value());
  awaiting_cluster_.store(false);  // after initialized_: never "not initialised" in between
  if (config->has_value()) {
    auto obj = ParseObject(**config);
    if (obj.ok()) {
      recovery_shares_ = static_cast<int>(GetInt(*obj, "recovery_shares").value_or(0).value_or(0));
      recovery_threshold_ =
          static_cast<int>(GetInt(*obj, "recovery_threshold").value_or(0).value_or(0));
    }
  }
  if (absl::Status s = seal_->Open(); !s.ok()) {
    SetSealReason(absl::StrCat("cannot open the PKCS#11 token: ", s.message()));
    return;
  }
  if (!initialized_.load()) {
    LogInfo("storage is not initialised; waiting for sys/init");
    return;
  }
  if (absl::Status s = seal_->FindKek(); !s.ok()) {
    SetSealReason(absl::StrCat("cannot use the KEK: ", s.message()));
    return;
  }
  const std::string& blob = **wrapped;
  auto plain = seal_->Unwrap({reinterpret_cast<const uint8_t*>(blob.data()), blob.size()});
  if (!plain.ok()) {
    SetSealReason(absl::StrCat("cannot unwrap the barrier keyring: ", plain.status().message()));
    return;
  }
  auto keyring = Keyring::Parse(plain->span());
  if (!keyring.ok()) {
    SetSealReason(absl::StrCat("barrier keyring is corrupt: ", keyring.status().message()));
    return;
  }
  if (absl::Status s = UnsealWithKeyring(std::move(*keyring)); !s.ok()) {
    SetSealReason(absl::StrCat("unseal failed: ", s.message()));
    return;
  }
  seal_reason_.clear();
  LogInfo("unsealed with the KEK in the PKCS#11 token");
}

absl::Status Core::ReloadTables() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (barrier_.sealed()) return absl::FailedPreconditionError("Vault is sealed");
  ASSIGN_OR_RETURN(auto blob, physical_->Get(kKeyringKey));
  if (!blob) return absl::DataLossError("keyring missing from storage");
  ASSIGN_OR_RETURN(auto plain,
                   seal_->Unwrap({reinterpret_cast<const uint8_t*>(blob->data()), blob->size()}));
  ASSIGN_OR_RETURN(auto keyring, Keyring::Parse(plain.span()));
  barrier_.Install(std::move(keyring));
  RETURN_IF_ERROR(tokens_.Load());
  RETURN_IF_ERROR(LoadMounts());
  policies_.Clear();
  identity_.Clear();
  audit_.Unload();
  return audit_.Load();
}

absl::Status Core::UnsealWithKeyring(Keyring keyring) {
  barrier_.Unseal(std::move(keyring));
  absl::Status s = LoadAfterUnseal();
  if (!s.ok()) {
    barrier_.Seal();
    tokens_.Unload();
    return s;
  }
  sealed_by_request_.store(false);
  return s;
}

absl::Status Core::LoadAfterUnseal() {
  RETURN_IF_ERROR(tokens_.Load());
  ASSIGN_OR_RETURN(auto cluster, barrier_.Get(kClusterKey));
  if (!cluster) {
    json::object c;
    c["name"] = absl::StrCat("vault-cluster-", RandomHex(4));
    c["id"] = NewUuid();
    RETURN_IF_ERROR(barrier_.Put(kClusterKey, Serialize(c)));
    cluster = Serialize(c);
  }
  ASSIGN_OR_RETURN(auto c, ParseObject(*cluster));
  cluster_name_ = GetString(c, "name").value_or(std::nullopt).value_or("");
  cluster_id_ = GetString(c, "id").value_or(std::nullopt).value_or("");
  RETURN_IF_ERROR(LoadMounts());
  if (active()) {  // sys/version-history: the first unseal of each version as the active node
    if (absl::Status s = RecordInstalledVersion(barrier_, options_.version, options_.build_date,
                                                options_.clock());
        !s.ok()) {
      LogWarn("cannot record the installed version %s: %s", options_.version, s.message());
    }
  }
  return audit_.Load();
}

absl::StatusOr<InitResult> Core::Initialize(const InitRequest& req) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (initialized_.load()) return absl::InvalidArgumentError("Vault is already initialized");
  if (awaiting_cluster_.load()) return absl::UnavailableError(kWaitingForCluster);
  if (req.recovery_shares < 1 || req.recovery_shares > 255) {
    return absl::InvalidArgumentError("recovery_shares must be between 1 and 255");
  }
  if (req.recovery_threshold < 1 || req.recovery_threshold > req.recovery_shares) {
    return absl::InvalidArgumentError("recovery_threshold must be between 1 and recovery_shares");
  }
  if (req.recovery_shares > 1 && req.recovery_threshold < 2) {
    return absl::InvalidArgumentError(
        "recovery_threshold must be at least 2 when recovery_shares > 1");
  }
  if (absl::Status s = seal_->Open(); !s.ok()) {
    SetSealReason(absl::StrCat("cannot open the PKCS#11 token: ", s.message()));
    return absl::UnavailableError("the PKCS#11 token is not available; see the server log");
  }
  if (options_.cluster != nullptr) {
    // Raft: this node starts a cluster of its own (a node that joins one is never initialised).
    if (absl::Status s = options_.cluster->BootstrapForInit(); !s.ok()) {
      LogError("sys/init: %s", s.message());
      return absl::Status(s.code(), absl::StrCat("cannot start a Raft cluster: ", s.message()));
    }
  }
  if (absl::Status s = seal_->CreateKek(); !s.ok()) {
    LogError("sys/init: cannot create the KEK: %s", s.message());
    if (absl::IsAlreadyExists(s)) {
      return absl::InvalidArgumentError(absl::StrCat(
          s.message(),
          "; refusing to initialise over an existing key (remove it or pick another key_label)"));
    }
    return absl::UnavailableError("cannot create the KEK in the PKCS#11 token; see the server log");
  }
  ASSIGN_OR_RETURN(auto keyring, Keyring::Generate(absl::ToUnixNanos(options_.clock())));
  SecureBytes serialized = keyring.Serialize();
  ASSIGN_OR_RETURN(auto wrapped, seal_->Wrap(serialized.span()));
  SecureBytes recovery_key(kRecoveryKeySize);
  if (RAND_priv_bytes(recovery_key.data(), kRecoveryKeySize) != 1) {
    return absl::InternalError("random generator failed");
  }
  ASSIGN_OR_RETURN(auto shares,
                   ShamirSplit(recovery_key.span(), req.recovery_shares, req.recovery_threshold));
  json::object config;
  config["type"] = seal_->type();
  config["recovery_shares"] = req.recovery_shares;
  config["recovery_threshold"] = req.recovery_threshold;
  config["recovery_key_sha256"] = Sha256Hex(recovery_key.span());
  config["initialized_unix"] = absl::ToUnixSeconds(options_.clock());
  RETURN_IF_ERROR(physical_->Apply(
      {storage::BatchOp::Put(kKeyringKey, std::string(wrapped.begin(), wrapped.end())),
       storage::BatchOp::Put(kSealConfigKey, Serialize(config))}));
  recovery_shares_ = req.recovery_shares;
  recovery_threshold_ = req.recovery_threshold;
  initialized_.store(true);
  RETURN_IF_ERROR(UnsealWithKeyring(std::move(keyring)));
  seal_reason_.clear();
  ASSIGN_OR_RETURN(auto root, tokens_.CreateRoot(req.root_token_id, "auth/token/root"));
  LogInfo("initialised: KEK created in the token, %d recovery shares (threshold %d)",
          req.recovery_shares, req.recovery_threshold);
  return InitResult{std::move(shares), std::move(root)};
}

absl::Status Core::SealNow(std::string_view why) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!barrier_.sealed()) audit_.Unload();  // each log ends with a signed checkpoint
  {
    std::unique_lock mlock(mounts_mu_);
    mounts_.clear();
  }
  barrier_.Seal();
  tokens_.Unload();
  policies_.Clear();
  identity_.Clear();
  unseal_progress_.clear();
  seal_reason_ = std::string(why);
  LogInfo("%s; the keyring was wiped from memory", std::string(why));
  return absl::OkStatus();
}

absl::Status Core::SealByRequest() {
  // Set first: a main loop that sees the node sealed meanwhile must not unseal it again.
  sealed_by_request_.store(true);
  return SealNow("sealed by request (sys/seal)");
}

absl::Status Core::RotateKeyring() {
  std::lock_guard<std::mutex> lock(state_mu_);
  ASSIGN_OR_RETURN(auto current, barrier_.CopyKeyring());
  ASSIGN_OR_RETURN(auto next, current.Rotated(absl::ToUnixNanos(options_.clock())));
  SecureBytes serialized = next.Serialize();
  ASSIGN_OR_RETURN(auto wrapped, seal_->Wrap(serialized.span()));
  RETURN_IF_ERROR(physical_->Put(kKeyringKey, std::string(wrapped.begin(), wrapped.end())));
  const uint32_t term = next.Active().term;
  barrier_.Install(std::move(next));
  LogInfo("barrier keyring rotated to term %d", term);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Mount table

// ---------------------------------------------------------------------------------------------
// Pipeline

absl::StatusOr<Response> Core::Handle(Request& req) {
  RETURN_IF_ERROR(ValidatePath(req.path));
  bool handled = false;
  auto raw = HandleSysRaw(req, &handled);
  if (handled) return raw;  // init, seal status, unseal, health, leader: not audited (as Vault)
  if (barrier_.sealed()) return absl::UnavailableError("Vault is sealed");

  if (req.wrap_ttl < 0 || req.wrap_ttl > options_.max_lease_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrapping TTL must be between 1s and ", options_.max_lease_ttl, "s"));
  }

  AuditTrail trail;
  // Not the active node (any more): refused before anything is done.
  if (options_.cluster != nullptr) RETURN_IF_ERROR(options_.cluster->BeginAnswer());
  auto result = Dispatch(req, trail);
  if (trail.audit_failed) return result;
  // X-Vault-Wrap-TTL: the response goes into a wrapping token's cubbyhole. Only for a caller
  // that presented a token or logged in (an anonymous request makes no token this way).
  // The audit record keeps what was wrapped (its strings as digests, as any response) beside
  // the wrap_info; the client gets only the wrap_info.
  std::optional<Response> audited;
  if (result.ok() && req.wrap_ttl > 0 && Wrappable(*result) &&
      (trail.token.has_value() || result->auth.has_value())) {
    auto wrapped = WrapResponse(req, *result);
    if (wrapped.ok()) {
      audited = std::move(*result);
      audited->wrap_info = wrapped->wrap_info;
    }
    result = std::move(wrapped);
  }
  if (options_.cluster != nullptr && result.ok() && req.path == "sys/seal" && barrier_.sealed()) {
    options_.cluster->EndLocalAnswer();  // this node is sealed: true whoever leads now
  } else if (options_.cluster != nullptr) {
    // Replicated: an answer goes out only once it is known to be current (core/cluster.h).
    if (absl::Status s = options_.cluster->ConfirmAnswer(result.ok()); !s.ok()) result = s;
  }
  AuditEvent event;
  event.request = &req;
  event.token = trail.token ? &*trail.token : nullptr;
  if (!result.ok()) event.error = std::string(result.status().message());
  if (!trail.request_logged) {
    // Refused before the backend ran (bad token, ACL, no route): one request record with the
    // error, as Vault writes; without the body when no token was accepted.
    event.unauthenticated_refusal = !trail.token.has_value();
    RETURN_IF_ERROR(audit_.LogRequest(event));
    return result;
  }
  if (result.ok()) event.response = audited ? &*audited : &*result;
  if (result.ok() && req.path == "sys/seal" && barrier_.sealed()) {
    // As Vault: sealing closed the audit devices (each log ends with a signed checkpoint), so
    // sys/seal has its request record only. Any other response that finds the devices closed
    // fails (AuditBroker::LogResponse): it is not answered as if it had been recorded.
    return result;
  }
  RETURN_IF_ERROR(audit_.LogResponse(event));
  if (result.ok() && req.path == "sys/step-down" && options_.cluster != nullptr) {
    // Recorded and about to be answered: now the node may give up the active role (Vault
    // answers 204 at once; the broker's main loop carries the step-down out).
    options_.cluster->RequestStepDown();
  }
  return result;
}

absl::StatusOr<Response> Core::Dispatch(Request& req, AuditTrail& trail) {
  const auto log_request = [&](const TokenEntry* token) -> absl::Status {
    AuditEvent event;
    event.request = &req;
    event.token = token;
    absl::Status s = audit_.LogRequest(event);
    trail.request_logged = s.ok();
    trail.audit_failed = !s.ok();  // fail closed: nothing runs
    return s;
  };
  if (absl::StartsWith(req.path, "sys/internal/ui/mounts")) {
    RETURN_IF_ERROR(log_request(nullptr));
    return UiMounts(req);
  }
  // Route. The runtime is shared, so an unmount that runs meanwhile does not pull it from under us.
  std::shared_ptr<MountRuntime> rt = Route(req.path);
  trail.mount = rt;
  if (rt != nullptr) {
    req.mount = &rt->entry;
    req.mount_path = rt->entry.path;
    req.mount_type = rt->entry.type;
    // One canonical name from here on: Exists, the ACL, the audit log and the backend all see it.
    const std::string rel =
        req.path.size() >= rt->entry.path.size() ? req.path.substr(rt->entry.path.size()) : "";
    ASSIGN_OR_RETURN(req.rel_path, NormalizeRelPath(*rt->backend, rel));
    if (req.rel_path != rel) req.path = absl::StrCat(rt->entry.path, req.rel_path);
    req.storage = rt->view.get();
    if (rt->backend->IsUnauthenticatedPath(req.rel_path)) {
      // An auth method's login: no token, no ACL; still audited first.
      RETURN_IF_ERROR(log_request(nullptr));
      return HandleRouted(*rt->backend, req);
    }
  }

  if (req.client_token.empty()) return absl::PermissionDeniedError("permission denied");
  ASSIGN_OR_RETURN(trail.token, tokens_.Lookup(req.client_token));
  // Vault's answer to a wrapping token presented twice (or expired): the holder learns that
  // someone else may have unwrapped it.
  const auto invalid_token = [&req] {
    return req.path == "sys/wrapping/unwrap"
               ? absl::InvalidArgumentError("wrapping token is not valid or does not exist")
               : absl::PermissionDeniedError(kInvalidToken);
  };
  if (!trail.token) return invalid_token();
  TokenEntry* token = &*trail.token;
  if (rt != nullptr && req.operation == Operation::kUpdate) {
    req.token = token;  // the cubbyhole's existence is the token's own
    // Create or update decides which capability the ACL asks for.
    ASSIGN_OR_RETURN(bool exists, rt->backend->Exists(req));
    if (!exists) req.operation = Operation::kCreate;
  }

  // ACL: the token's policies, Vault's matching rules (policy/acl.h). Denied before routing
  // errors, so a token cannot probe for mounts it has no access to.
  ASSIGN_OR_RETURN(std::shared_ptr<const policy::Acl> acl, CompiledAclFor(*token));
  const std::vector<policy::ParamEntry> params = ToParamEntries(req.data);
  policy::AclRequest areq;
  areq.path = req.path;
  areq.operation = ToPolicyOperation(req.operation);
  areq.data = params;
  areq.root_protected = rt != nullptr && rt->backend->IsRootPath(req.rel_path);
  if (req.wrap_ttl > 0) areq.wrap_ttl = req.wrap_ttl;
  const policy::AclResult verdict = acl->Allowed(areq);
  if (!verdict.allowed) {
    LogInfo("request %s denied: %s %s: %s", req.request_id, OperationName(req.operation),
            LoggablePath(req.path), verdict.reason);
    return absl::PermissionDeniedError(kAclDenied);
  }
  req.token_is_root = verdict.is_root;
  req.token_has_sudo = verdict.root_privs;
  if (rt == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no handler for route \"", req.path, "\". route entry not found."));
  }
  RETURN_IF_ERROR(log_request(token));
  bool revoke_after = false;
  if (!UnwrapsItself(req, *token)) {
    ASSIGN_OR_RETURN(bool usable, tokens_.Use(*token, &revoke_after));
    if (!usable) return invalid_token();  // its uses are spent
  }
  req.token = token;
  auto result = HandleRouted(*rt->backend, req);  // behind its route table (core/route.h)
  if (revoke_after) RETURN_IF_ERROR(tokens_.RevokeTree(*token));  // that was its last use
  return result;
}

std::shared_ptr<Core::MountRuntime> Core::Route(std::string_view path) const {
  std::shared_lock lock(mounts_mu_);
  std::shared_ptr<MountRuntime> rt;
  for (const auto& [prefix, m] : mounts_) {
    // "secret" reaches "secret/".
    const bool match =
        path.starts_with(prefix) || path == std::string_view(prefix).substr(0, prefix.size() - 1);
    if (match && (rt == nullptr || prefix.size() > rt->entry.path.size())) rt = m;
  }
  return rt;
}

absl::StatusOr<std::string> Core::CanonicalPath(const std::string& path) const {
  std::shared_ptr<MountRuntime> rt = Route(path);
  if (rt == nullptr || path.size() <= rt->entry.path.size()) return path;
  const std::string rel = path.substr(rt->entry.path.size());
  ASSIGN_OR_RETURN(std::string canonical, NormalizeRelPath(*rt->backend, rel));
  return absl::StrCat(rt->entry.path, canonical);
}

absl::StatusOr<std::vector<std::string>> Core::IdentityPolicies(const TokenEntry& token) {
  if (token.entity_id.empty()) return std::vector<std::string>{};
  ASSIGN_OR_RETURN(auto entity, identity_.Get(token.entity_id));
  if (!entity) return std::vector<std::string>{};
  return entity->policies;
}

absl::StatusOr<policy::Acl> Core::AclFor(const TokenEntry& token) {
  ASSIGN_OR_RETURN(auto acl, CompiledAclFor(token));
  return *acl;
}

absl::StatusOr<std::shared_ptr<const policy::Acl>> Core::CompiledAclFor(const TokenEntry& token) {
  if (token.entity_id.empty()) return policies_.CompiledAcl(token.policies, nullptr, {});
  ASSIGN_OR_RETURN(auto entity, identity_.Get(token.entity_id));
  if (!entity) {
    // The entity was deleted: the token keeps its own policies; templates no longer resolve.
    return policies_.CompiledAcl(token.policies, nullptr, {});
  }
  if (entity->disabled) return absl::PermissionDeniedError(kAclDenied);
  std::vector<std::string> names = token.policies;
  for (const auto& p : entity->policies) {
    // Root is never granted through identity (stricter than Vault): whoever may write an
    // entity's policies must not be able to mint root for its tokens.
    if (p == policy::kRootPolicyName) continue;
    if (std::find(names.begin(), names.end(), p) == names.end()) names.push_back(p);
  }
  // The entity object is immutable (the identity store replaces it on any change): it keys the
  // memo, and its context is made only when the ACL is compiled.
  const Entity* e = entity.get();
  return policies_.CompiledAcl(names, entity, [e] { return e->Context(); });
}

absl::StatusOr<Response> Core::CompleteLogin(TokenEntry entry, const LoginAlias& alias,
                                             int64_t lease_duration) {
  // Every auth method's login ends here: whatever a role says, no root token comes out.
  if (absl::Status s = CheckLoginPolicies(entry.policies); !s.ok()) {
    LogWarn("login through %s refused: %s", alias.mount_path, s.message());
    return s;
  }
  bool created = false;
  ASSIGN_OR_RETURN(auto entity, identity_.Login(alias, &created));
  if (entity->disabled) {
    LogInfo("login through %s refused: entity %s is disabled", alias.mount_path, entity->id);
    return absl::PermissionDeniedError("permission denied");
  }
  entry.entity_id = entity->id;
  entry.orphan = true;
  std::string token;
  if (entry.IsBatch()) {
    entry.mount_accessor = alias.mount_accessor;
    ASSIGN_OR_RETURN(token, tokens_.CreateBatch(entry));
  } else {
    ASSIGN_OR_RETURN(token, tokens_.Create(entry, ""));
  }
  Response resp;
  resp.auth = TokenAuthResponse(entry, token, lease_duration, entity->policies);
  return resp;
}

// sys/internal/ui/mounts[/<path>]: what the Vault CLI, Agent and consul-template ask first to
// learn a path's mount and KV version. The listing needs no token (only mounts tuned
// listing_visibility="unauth" are shown to anonymous callers); the per-path form needs a token
// with any grant under the owning mount, and answers 403 alike for "no access" and "no mount", so
// it cannot be used to enumerate mounts.
absl::StatusOr<Response> Core::UiMounts(Request& req) {
  if (req.operation != Operation::kRead) return UnsupportedOperation();
  std::string_view rest =
      std::string_view(req.path).substr(std::string_view("sys/internal/ui/mounts").size());
  std::optional<TokenEntry> token;
  bool revoke_after = false;
  if (!req.client_token.empty()) {
    ASSIGN_OR_RETURN(token, tokens_.Lookup(req.client_token));
    if (!token) return absl::PermissionDeniedError(kInvalidToken);
    // A token presented here is used like on any other path: a limited-use token spends one.
    ASSIGN_OR_RETURN(bool usable, tokens_.Use(*token, &revoke_after));
    if (!usable) return absl::PermissionDeniedError(kInvalidToken);
  }
  auto result = UiMountsFor(rest, token ? &*token : nullptr);
  if (revoke_after) RETURN_IF_ERROR(tokens_.RevokeTree(*token));  // that was its last use
  return result;
}

absl::StatusOr<Response> Core::UiMountsFor(std::string_view rest, const TokenEntry* token) {
  std::shared_ptr<const policy::Acl> acl;
  if (token) {
    ASSIGN_OR_RETURN(acl, CompiledAclFor(*token));
  }
  auto info = [](const MountEntry& m) {
    json::object o = MountEntryToJson(m);
    o.erase("created_unix");  // internal
    return o;
  };
  if (rest.empty() || rest == "/") {
    json::object secret, auth;
    for (const auto& m : Mounts()) {
      const bool visible = m.config.listing_visibility == "unauth" ||
                           (acl && m.type != "system" && acl->AnyGrantUnder(m.path));
      if (!visible) continue;
      if (absl::StartsWith(m.path, "auth/")) {
        auth[m.path.substr(5)] = info(m);
      } else {
        secret[m.path] = info(m);
      }
    }
    json::object d;
    d["secret"] = std::move(secret);
    d["auth"] = std::move(auth);
    return Response::Data(std::move(d));
  }
  if (!token) return absl::PermissionDeniedError("permission denied");
  std::string target(rest.substr(1));
  if (!target.empty() && target.back() != '/') target.push_back('/');
  const std::string denied = absl::StrCat(
      "preflight capability check returned 403, please ensure client's policies grant access to "
      "path \"",
      target, "\"");
  std::optional<MountEntry> owner;
  for (const auto& m : Mounts()) {
    if (absl::StartsWith(target, m.path) && (!owner || m.path.size() > owner->path.size()))
      owner = m;
  }
  if (!owner || !acl->AnyGrantUnder(owner->path)) return absl::PermissionDeniedError(denied);
  json::object d = info(*owner);
  d["path"] = owner->path;
  return Response::Data(std::move(d));
}

void Core::Periodic() {
  if (barrier_.sealed() || !active()) return;
  std::vector<std::shared_ptr<MountRuntime>> mounts;
  {
    std::shared_lock lock(mounts_mu_);
    for (const auto& [path, m] : mounts_) mounts.push_back(m);
  }
  const absl::Time now = Now();
  for (const auto& m : mounts) m->backend->Periodic(*m->view, now);
}

void Core::Tick() {
  if (barrier_.sealed() || !active()) return;
  auto removed = tokens_.Tidy();
  if (!removed.ok()) {
    LogWarn("token tidy failed: %s", removed.status().message());
  } else if (*removed > 0) {
    LogInfo("removed %d expired tokens", static_cast<int>(*removed));
  }
}

absl::StatusOr<Response> Core::HandleSysRaw(Request& req, bool* handled) {
  *handled = true;
  const Operation op = req.operation;
  const bool write = op == Operation::kUpdate || op == Operation::kCreate;
  if (req.path == "sys/init") {
    if (op == Operation::kRead) {
      json::object o;
      o["initialized"] = ReportsInitialized();
      return Response::Raw(std::move(o));
    }
    if (write) return InitEndpoint(req);
    return UnsupportedOperation();
  }
  if (req.path == "sys/seal-status") {
    if (op != Operation::kRead) return UnsupportedOperation();
    return SealStatus();
  }
  if (req.path == "sys/unseal") {
    if (!write) return UnsupportedOperation();
    return UnsealEndpoint(req);
  }
  if (req.path == "sys/health") {
    if (op != Operation::kRead && op != Operation::kHead) {
      return UnsupportedOperation();
    }
    return Health(req);
  }
  if (req.path == "sys/leader") {
    if (op != Operation::kRead) return UnsupportedOperation();
    return Leader();
  }
  if (req.path == "sys/metrics" && op == Operation::kRead &&
      options_.telemetry.unauthenticated_metrics_access) {
    return engines::MetricsResponse(options_.telemetry, req.data);  // no token, not audited
  }
  if (req.path == "sys/storage/raft/join") {
    if (!write) return UnsupportedOperation();
    return RaftJoinEndpoint(req);
  }
  *handled = false;
  return Response();
}

absl::StatusOr<Response> Core::SealStatus() {
  std::lock_guard<std::mutex> lock(state_mu_);
  json::object o;
  const bool is_sealed = barrier_.sealed();
  o["type"] = seal_->type();
  o["initialized"] = ReportsInitialized();
  o["sealed"] = is_sealed;
  o["t"] = initialized_.load() ? recovery_threshold_ : 0;
  o["n"] = initialized_.load() ? recovery_shares_ : 0;
  o["progress"] = static_cast<int64_t>(unseal_progress_.size());
  o["nonce"] = unseal_nonce_;
  o["version"] = options_.version;
  o["build_date"] = options_.build_date;
  o["migration"] = false;
  if (!is_sealed) {
    o["cluster_name"] = cluster_name_;
    o["cluster_id"] = cluster_id_;
  }
  o["recovery_seal"] = true;
  o["recovery_seal_type"] = "shamir";
  o["storage_type"] = options_.storage_type;
  o["removed_from_cluster"] = false;
  return Response::Raw(std::move(o));
}

absl::StatusOr<Response> Core::Health(const Request& req) {
  ASSIGN_OR_RETURN(int active, QueryCode(req.data, "activecode", 200));
  ASSIGN_OR_RETURN(int standby, QueryCode(req.data, "standbycode", 429));
  ASSIGN_OR_RETURN(int sealed_code, QueryCode(req.data, "sealedcode", 503));
  ASSIGN_OR_RETURN(int uninit, QueryCode(req.data, "uninitcode", 501));
  ASSIGN_OR_RETURN(int dr, QueryCode(req.data, "drsecondarycode", 472));
  ASSIGN_OR_RETURN(int perf, QueryCode(req.data, "performancestandbycode", 473));
  ASSIGN_OR_RETURN(int unhealthy, QueryCode(req.data, "haunhealthycode", 474));
  ASSIGN_OR_RETURN(int removed, QueryCode(req.data, "removedcode", 530));
  ASSIGN_OR_RETURN(bool standbyok, QueryBool(req.data, "standbyok"));
  ASSIGN_OR_RETURN(bool perfstandbyok, QueryBool(req.data, "perfstandbyok"));
  (void)dr;
  (void)perf;
  (void)unhealthy;
  (void)removed;
  (void)perfstandbyok;  // no performance standbys (an Enterprise feature)
  // A Raft node waiting for its cluster answers as sealed (503), initialised.
  const bool init = ReportsInitialized();
  const bool is_sealed = barrier_.sealed();
  // A Raft follower that is unsealed is a standby (Vault's 429, or the active code with
  // standbyok).
  const bool is_standby = init && !is_sealed && !this->active();
  const int code = !init        ? uninit
                   : is_sealed  ? sealed_code
                   : is_standby ? (standbyok ? active : standby)
                                : active;
  json::object o;
  o["initialized"] = init;
  o["sealed"] = is_sealed;
  o["standby"] = is_standby;
  o["performance_standby"] = false;
  o["replication_performance_mode"] = "disabled";
  o["replication_dr_mode"] = "disabled";
  o["server_time_utc"] = absl::ToUnixSeconds(options_.clock());
  o["version"] = options_.version;
  o["enterprise"] = false;
  if (!is_sealed) {
    o["cluster_name"] = cluster_name();
    o["cluster_id"] = cluster_id();
  }
  o["echo_duration_ms"] = 0;
  o["clock_skew_ms"] = 0;
  o["replication_primary_canary_age_ms"] = 0;
  o["removed_from_cluster"] = false;
  o["ha_connection_healthy"] = true;
  // strongroom's addition: why a Raft node that is back is still sealed.
  if (awaiting_cluster_.load()) o["strongroom_seal_reason"] = kWaitingForCluster;
  // strongroom's addition: how the request workers fare (restarts, seccomp kills, crash loop).
  if (options_.worker_status) o["strongroom_workers"] = options_.worker_status();
  Response r = Response::Raw(std::move(o), code);
  r.head_only = req.operation == Operation::kHead;
  return r;
}

absl::StatusOr<Response> Core::Leader() {
  if (barrier_.sealed()) return absl::UnavailableError("Vault is sealed");
  json::object o;
  std::optional<LeaderInfo> leader;
  if (options_.cluster != nullptr) leader = options_.cluster->CurrentLeader();
  o["ha_enabled"] = options_.cluster != nullptr;
  o["is_self"] = leader && leader->self;
  o["active_time"] = "0001-01-01T00:00:00Z";
  o["leader_address"] = leader ? leader->api_addr : "";
  o["leader_cluster_address"] = leader ? absl::StrCat("https://", leader->cluster_addr) : "";
  o["performance_standby"] = false;
  o["performance_standby_last_remote_wal"] = 0;
  if (options_.cluster != nullptr) {
    o["raft_committed_index"] = options_.cluster->RaftCommittedIndex();
    o["raft_applied_index"] = options_.cluster->RaftAppliedIndex();
  }
  return Response::Raw(std::move(o));
}

absl::StatusOr<Response> Core::InitEndpoint(Request& req) {
  std::vector<std::string> barrier_fields;
  // As Vault: a barrier field counts when it is set to something (0 / [] / null mean unset).
  for (std::string f : {"secret_shares", "secret_threshold", "pgp_keys", "stored_shares"}) {
    auto it = req.data.find(f);
    if (it == req.data.end()) continue;
    const json::value& v = it->value();
    const bool unset = v.is_null() || (v.is_int64() && v.as_int64() == 0) ||
                       (v.is_uint64() && v.as_uint64() == 0) ||
                       (v.is_array() && v.as_array().empty());
    if (!unset) barrier_fields.emplace_back(f);
  }
  if (!barrier_fields.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters ", absl::StrJoin(barrier_fields, ","), " not applicable to seal type pkcs11"));
  }
  for (std::string f : {"recovery_pgp_keys", "root_token_pgp_key"}) {
    if (req.data.contains(f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": PGP encryption of keys is not supported"));
    }
  }
  InitRequest ir;
  ASSIGN_OR_RETURN(auto shares, GetInt(req.data, "recovery_shares"));
  ASSIGN_OR_RETURN(auto threshold, GetInt(req.data, "recovery_threshold"));
  if (shares) ir.recovery_shares = static_cast<int>(std::clamp<int64_t>(*shares, -1, 1000));
  if (threshold)
    ir.recovery_threshold = static_cast<int>(std::clamp<int64_t>(*threshold, -1, 1000));
  if (shares && !threshold) ir.recovery_threshold = std::min(ir.recovery_shares, 3);
  if (ir.recovery_shares > 1 && ir.recovery_threshold < 2 && !threshold) ir.recovery_threshold = 2;
  ASSIGN_OR_RETURN(auto result, Initialize(ir));
  json::object o;
  o["keys"] = json::array();
  o["keys_base64"] = json::array();
  json::array hex, b64;
  for (const auto& s : result.recovery_keys) {
    hex.emplace_back(absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(s.data()), s.size())));
    b64.emplace_back(
        absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(s.data()), s.size())));
  }
  o["recovery_keys"] = std::move(hex);
  o["recovery_keys_base64"] = std::move(b64);
  o["root_token"] = result.root_token;
  return Response::Raw(std::move(o));
}

absl::StatusOr<Response> Core::RaftJoinEndpoint(Request& req) {
  if (options_.cluster == nullptr) return Bad("raft storage is not in use on this node");
  if (ReportsInitialized()) return Bad("join can't be invoked on an initialized cluster");
  JoinRequest jr;
  ASSIGN_OR_RETURN(auto api, GetString(req.data, "leader_api_addr"));
  ASSIGN_OR_RETURN(auto cluster, GetString(req.data, "leader_cluster_addr"));
  ASSIGN_OR_RETURN(auto non_voter, GetBool(req.data, "non_voter"));
  jr.leader_api_addr = api.value_or("");
  jr.leader_cluster_addr = cluster.value_or("");
  jr.non_voter = non_voter.value_or(false);
  ASSIGN_OR_RETURN(auto join_token, GetString(req.data, "join_token"));
  jr.join_token = join_token.value_or("");
  if (jr.join_token.size() > 256) return Bad("join_token is too long");
  if (jr.leader_api_addr.empty() && jr.leader_cluster_addr.empty()) {
    return Bad("leader_api_addr is required");
  }
  if (jr.non_voter) return Bad("non_voter is not supported: every strongroom node votes");
  if (absl::Status s = options_.cluster->Join(jr); !s.ok()) {
    // A member now whose data did not arrive in time: it unseals once it has caught up (the
    // broker's main loop), never to stay "not initialised".
    if (absl::IsDeadlineExceeded(s)) WaitForCluster();
    return s;
  }
  // The log (keyring included) arrives from the leader; unseal with the KEK just received.
  for (int i = 0; i < 600; ++i) {
    auto keyring = physical_->Get(kKeyringKey);
    if (keyring.ok() && keyring->has_value()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  Start();
  if (!initialized_.load() || barrier_.sealed()) {
    return absl::UnavailableError(absl::StrCat(
        "joined the cluster but could not unseal: ",
        seal_reason().empty() ? "the cluster's data has not arrived yet" : seal_reason()));
  }
  json::object o;
  o["joined"] = true;
  return Response::Raw(std::move(o));
}

absl::StatusOr<Response> Core::UnsealEndpoint(Request& req) {
  ASSIGN_OR_RETURN(auto reset, GetBool(req.data, "reset"));
  ASSIGN_OR_RETURN(auto key, GetString(req.data, "key"));
  if (awaiting_cluster_.load()) return absl::UnavailableError(kWaitingForCluster);
  if (!initialized_.load()) return absl::InvalidArgumentError("Vault is not initialized");
  if (reset.value_or(false)) {
    if (!barrier_.sealed()) return absl::InvalidArgumentError("vault is unsealed");
    std::lock_guard<std::mutex> lock(state_mu_);
    unseal_progress_.clear();
    unseal_nonce_.clear();
  } else if (!key || key->empty()) {
    if (!barrier_.sealed()) return SealStatus();
    return absl::InvalidArgumentError(
        "'key' must be specified in request body as JSON, or 'reset' set to true");
  } else if (barrier_.sealed()) {
    // Recovery key shares: hex of the right length, else base64.
    std::string bytes;
    if (key->size() == 2 * (kRecoveryKeySize + 1) &&
        std::all_of(key->begin(), key->end(), [](char c) { return absl::ascii_isxdigit(c); })) {
      bytes = absl::HexStringToBytes(*key);
    } else if (!absl::Base64Unescape(*key, &bytes)) {
      return absl::InvalidArgumentError("'key' must be a valid hex or base64 string");
    }
    if (bytes.size() != kRecoveryKeySize + 1) {
      return absl::InvalidArgumentError("'key' must be a valid hex or base64 string");
    }
    std::lock_guard<std::mutex> lock(state_mu_);
    std::vector<uint8_t> share(bytes.begin(), bytes.end());
    SecureZero(bytes.data(), bytes.size());
    for (const auto& s : unseal_progress_) {
      if (s == share) return absl::InvalidArgumentError("given key share is a duplicate");
    }
    if (unseal_progress_.empty()) unseal_nonce_ = NewUuid();
    unseal_progress_.push_back(std::move(share));
    if (static_cast<int>(unseal_progress_.size()) >= recovery_threshold_) {
      auto progress = std::move(unseal_progress_);
      unseal_progress_.clear();
      unseal_nonce_.clear();
      ASSIGN_OR_RETURN(auto raw_config, physical_->Get(kSealConfigKey));
      ASSIGN_OR_RETURN(auto config, ParseObject(raw_config.value_or("")));
      ASSIGN_OR_RETURN(auto want, GetString(config, "recovery_key_sha256"));
      auto secret = ShamirCombine(progress);
      for (auto& s : progress) SecureZero(s.data(), s.size());
      if (!secret.ok() || !want || Sha256Hex(secret->span()) != *want) {
        return absl::InvalidArgumentError("unseal failed, invalid key");
      }
      RETURN_IF_ERROR(seal_->Open());
      RETURN_IF_ERROR(seal_->FindKek());
      ASSIGN_OR_RETURN(auto blob, physical_->Get(kKeyringKey));
      if (!blob) return absl::InternalError("keyring missing from storage");
      ASSIGN_OR_RETURN(auto plain, seal_->Unwrap({reinterpret_cast<const uint8_t*>(blob->data()),
                                                  blob->size()}));
      ASSIGN_OR_RETURN(auto keyring, Keyring::Parse(plain.span()));
      RETURN_IF_ERROR(UnsealWithKeyring(std::move(keyring)));
      seal_reason_.clear();
      LogInfo("unsealed with recovery key shares");
    }
  }
  return SealStatus();
}

}  // namespace strongroom::core
