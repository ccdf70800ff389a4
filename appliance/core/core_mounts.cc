// The mount table: building, loading and persisting mounts, mounting, unmounting, tuning and
// moving them (the part of Core behind sys/mounts, sys/auth and sys/remount).
#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "appliance/core/core.h"
#include "appliance/core/mount_entry.h"
#include "appliance/engines/cubbyhole_backend.h"
#include "appliance/engines/identity_backend.h"
#include "appliance/engines/sys_backend.h"
#include "appliance/engines/token_backend.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::core {
namespace {

constexpr char kMountsKey[] = "core/mounts";  // in the barrier

// Paths no mount may take: sys/, cubbyhole/, identity/ (and what would contain them), auth/ for
// a secrets engine, the token store's own auth/token/.
absl::Status CheckReserved(const std::string& path, bool auth) {
  static constexpr absl::string_view kReserved[] = {"sys/", "auth/", "cubbyhole/", "identity/"};
  for (auto r : kReserved) {
    if (auth && r == "auth/") {
      if (path == "auth/" || absl::StartsWith(path, "auth/token/")) {
        return absl::InvalidArgumentError("cannot mount at reserved path \"auth/token/\"");
      }
      continue;
    }
    if (absl::StartsWith(path, r) || absl::StartsWith(r, path)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot mount at reserved path \"", r, "\""));
    }
  }
  return absl::OkStatus();
}

// A mount path from a request body (sys/remount): what the router would take from a URL, with
// its trailing slash.
absl::Status CheckMountPath(const std::string& path) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid mount path \"", absl::CHexEscape(path), "\""));
  };
  if (path.size() < 2 || path.size() > 1024 || path.front() == '/' || path.back() != '/') {
    return bad();
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad();
  }
  for (absl::string_view seg : absl::StrSplit(path.substr(0, path.size() - 1), '/')) {
    if (seg.empty() || seg == "." || seg == "..") return bad();
  }
  return absl::OkStatus();
}

// The mounts every node has and none may move or remove.
bool IsBuiltinMount(std::string_view type) {
  return type == "system" || type == "token" || type == "identity" || type == "cubbyhole";
}

}  // namespace

const EngineType* Core::FindEngine(std::string_view type) const {
  for (const auto& e : options_.engines) {
    if (e.type == type) return &e;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<Core::MountRuntime>> Core::BuildMount(const MountEntry& entry) {
  auto rt = std::make_shared<MountRuntime>();
  rt->entry = entry;
  if (entry.type == "system") {
    rt->view = std::make_unique<storage::View>(&barrier_, "sys/system/");
    rt->backend = engines::MakeSystemBackend(this);
    return rt;
  }
  if (entry.type == "token") {
    rt->view = std::make_unique<storage::View>(&barrier_, "sys/token-mount/");
    rt->backend = engines::MakeTokenBackend(this);
    return rt;
  }
  if (entry.type == "identity") {
    rt->view = std::make_unique<storage::View>(&barrier_, "sys/identity-mount/");
    rt->backend = engines::MakeIdentityBackend(this);
    return rt;
  }
  if (entry.type == "cubbyhole") {
    // Its data lives with the tokens (TokenStore::Cubbyhole*); the view stays empty.
    rt->view = std::make_unique<storage::View>(&barrier_, "sys/cubbyhole-mount/");
    rt->backend = engines::MakeCubbyholeBackend(this);
    return rt;
  }
  const EngineType* engine = FindEngine(entry.type);
  if (engine == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin not found in the catalog: ", entry.type));
  }
  rt->view = std::make_unique<storage::View>(&barrier_, absl::StrCat("logical/", entry.uuid, "/"));
  ASSIGN_OR_RETURN(rt->backend, engine->factory(entry, this));
  return rt;
}

absl::Status Core::LoadMounts() {
  ASSIGN_OR_RETURN(auto raw, barrier_.Get(kMountsKey));
  std::vector<MountEntry> entries;
  if (raw) {
    boost::system::error_code ec;
    json::value v = json::parse(*raw, ec);
    if (ec || !v.is_array()) return absl::DataLossError("mount table is corrupt");
    for (const auto& e : v.as_array()) {
      if (!e.is_object()) return absl::DataLossError("mount table is corrupt");
      ASSIGN_OR_RETURN(auto entry, MountEntryFromJson(e.as_object()));
      entries.push_back(std::move(entry));
    }
  }
  auto builtin = [this](std::string path, std::string type, std::string description,
                        std::string accessor_prefix) {
    MountEntry e;
    e.path = std::move(path);
    e.type = std::move(type);
    e.description = std::move(description);
    e.uuid = NewUuid();
    e.accessor = absl::StrCat(accessor_prefix, "_", RandomHex(4));
    e.created_unix = absl::ToUnixSeconds(options_.clock());
    return e;
  };
  if (!raw) {
    entries.push_back(builtin("sys/", "system",
                              "system endpoints used for control, policy and debugging", "system"));
  }
  // The token store, identity and the cubbyhole are always mounted (added to tables written before
  // they existed).
  bool added = !raw;
  auto ensure = [&](const char* path, const char* type, const char* description,
                    const char* accessor_prefix) {
    const bool has = std::any_of(entries.begin(), entries.end(),
                                 [&](const MountEntry& e) { return e.type == type; });
    if (has) return;
    entries.push_back(builtin(path, type, description, accessor_prefix));
    added = true;
  };
  ensure("auth/token/", "token", "token based credentials", "auth_token");
  ensure("identity/", "identity", "identity store", "identity");
  ensure("cubbyhole/", "cubbyhole", "per-token private secret storage", "cubbyhole");
  std::map<std::string, std::shared_ptr<MountRuntime>, std::greater<>> built;
  for (const auto& e : entries) {
    ASSIGN_OR_RETURN(auto rt, BuildMount(e));
    built[e.path] = std::move(rt);
  }
  {
    std::unique_lock lock(mounts_mu_);
    mounts_ = std::move(built);
  }
  if (added) return PersistMounts();
  return absl::OkStatus();
}

absl::Status Core::PersistMounts() {
  json::array arr;
  {
    std::shared_lock lock(mounts_mu_);
    for (const auto& [path, rt] : mounts_) arr.push_back(MountEntryToJson(rt->entry));
  }
  return barrier_.Put(kMountsKey, Serialize(arr));
}

std::vector<MountEntry> Core::Mounts() const {
  std::shared_lock lock(mounts_mu_);
  std::vector<MountEntry> out;
  for (const auto& [path, rt] : mounts_) out.push_back(rt->entry);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return out;
}

std::vector<Core::MountBackend> Core::MountBackends() const {
  std::shared_lock lock(mounts_mu_);
  std::vector<MountBackend> out;
  for (const auto& [path, rt] : mounts_) out.push_back({rt->entry, rt->backend});
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.entry.path < b.entry.path; });
  return out;
}

absl::Status Core::Mount(MountEntry entry) {
  std::lock_guard write(mounts_write_mu_);
  const EngineType* engine = FindEngine(entry.type);
  if (engine == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin not found in the catalog: ", entry.type));
  }
  if (engine->normalize) engine->normalize(entry);
  entry.uuid = NewUuid();
  entry.accessor = absl::StrCat(engine->accessor_prefix, "_", RandomHex(4));
  entry.created_unix = absl::ToUnixSeconds(options_.clock());
  if (engine->auth != absl::StartsWith(entry.path, "auth/")) {
    return absl::InvalidArgumentError(
        engine->auth ? absl::StrCat(entry.type, " is an auth method: enable it with sys/auth")
                     : absl::StrCat("plugin not found in the catalog: ", entry.type));
  }
  RETURN_IF_ERROR(CheckReserved(entry.path, engine->auth));
  ASSIGN_OR_RETURN(auto rt, BuildMount(entry));
  RETURN_IF_ERROR(rt->backend->Initialize(*rt->view));
  {
    std::unique_lock lock(mounts_mu_);
    for (const auto& [path, existing] : mounts_) {
      if (absl::StartsWith(entry.path, path) || absl::StartsWith(path, entry.path)) {
        return absl::InvalidArgumentError(absl::StrCat("path is already in use at ", path));
      }
    }
    mounts_[entry.path] = std::move(rt);
  }
  LogInfo("mounted %s engine at %s", entry.type, entry.path);
  return PersistMounts();
}

absl::Status Core::Unmount(const std::string& path) {
  std::lock_guard write(mounts_write_mu_);
  std::shared_ptr<MountRuntime> removed;
  {
    std::unique_lock lock(mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end())
      return absl::OkStatus();  // Vault: disabling a missing mount is a no-op
    const std::string& type = it->second->entry.type;
    if (IsBuiltinMount(type)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot unmount \"", path, "\""));
    }
    removed = std::move(it->second);
    mounts_.erase(it);
  }
  RETURN_IF_ERROR(PersistMounts());
  removed->backend->Unmounting(*removed->view);
  RETURN_IF_ERROR(storage::DeletePrefix(barrier_, removed->view->prefix()));
  LogInfo("unmounted %s", path);
  return absl::OkStatus();
}

// A kv mount's "version" option names its storage layout and the backend built for it, so a
// tune may not change it under a running backend: 2 -> 1 is refused as Vault refuses it, and
// 1 -> 2 (which Vault does by moving every key into the versioned layout) is refused here too,
// before anything of the tune is applied.
namespace {
absl::Status CheckKvVersionTune(const MountEntry& e, const std::string& wanted) {
  int64_t want = 0, have = 1;
  if (!absl::SimpleAtoi(wanted, &want)) {
    return absl::InvalidArgumentError("unable to parse options: version must be an integer");
  }
  if (want != 1 && want != 2) {
    return absl::InvalidArgumentError(absl::StrCat("invalid version provided: ", want));
  }
  if (auto it = e.options.find("version"); it != e.options.end() && !it->second.empty()) {
    if (!absl::SimpleAtoi(it->second, &have)) {
      return absl::InternalError("unable to parse mount entry: version");
    }
  }
  if (have > want) {
    return absl::InvalidArgumentError(absl::StrCat("cannot downgrade mount from version ", have));
  }
  if (have < want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upgrading a kv mount from version ", have, " to version ", want,
        " in place is not supported; enable a new mount with type \"kv-v2\" and copy the "
        "secrets into it"));
  }
  return absl::OkStatus();
}
}  // namespace

// All or nothing: everything is checked before the entry changes, and a failed write of the
// mount table puts the entry back as storage still has it.
absl::Status Core::TuneMount(const std::string& path, const MountConfig& config,
                             std::optional<std::string> description,
                             const std::map<std::string, std::string>& options) {
  std::lock_guard write(mounts_write_mu_);
  MountEntry before;
  {
    std::unique_lock lock(mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no mount at \"", path, "\""));
    }
    auto& e = it->second->entry;
    if (auto v = options.find("version"); v != options.end() && e.type == "kv") {
      RETURN_IF_ERROR(CheckKvVersionTune(e, v->second));
    }
    before = e;
    e.config = config;
    if (description) e.description = *description;
    for (const auto& [k, v] : options) e.options[k] = v;
  }
  absl::Status persisted = PersistMounts();
  if (!persisted.ok()) {
    std::unique_lock lock(mounts_mu_);
    if (auto it = mounts_.find(path); it != mounts_.end()) it->second->entry = before;
  }
  return persisted;
}

// A secrets engine moves to another path with its data: its storage view is named by the mount's
// UUID, so only the mount table changes (one write), and requests in flight finish on the old
// runtime. Auth methods are not moved (their tokens name the old login path).
absl::Status Core::Remount(const std::string& from, const std::string& to) {
  for (const std::string* p : {&from, &to}) RETURN_IF_ERROR(CheckMountPath(*p));
  if (from == to)
    return absl::InvalidArgumentError("the source and destination paths are the same");
  if (absl::StartsWith(from, "auth/") || absl::StartsWith(to, "auth/")) {
    return absl::InvalidArgumentError(
        "moving auth methods is not supported: disable and enable the method at the new path");
  }
  RETURN_IF_ERROR(CheckReserved(to, /*auth=*/false));
  std::lock_guard write(mounts_write_mu_);
  std::shared_ptr<MountRuntime> old;
  std::string type;
  {
    std::unique_lock lock(mounts_mu_);
    auto it = mounts_.find(from);
    if (it == mounts_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no matching mount at \"", from, "\""));
    }
    old = it->second;
    type = old->entry.type;
    if (IsBuiltinMount(type)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot remount \"", from, "\""));
    }
    for (const auto& [path, existing] : mounts_) {
      if (path != from && (absl::StartsWith(to, path) || absl::StartsWith(path, to))) {
        return absl::InvalidArgumentError(absl::StrCat("path already in use at ", path));
      }
    }
    // The same view and backend under the new path: one backend instance, whichever path a
    // request came in by.
    auto moved = std::make_shared<MountRuntime>();
    moved->entry = old->entry;
    moved->entry.path = to;
    moved->view = old->view;
    moved->backend = old->backend;
    mounts_.erase(it);
    mounts_[to] = std::move(moved);
  }
  if (absl::Status persisted = PersistMounts(); !persisted.ok()) {
    std::unique_lock lock(mounts_mu_);
    mounts_.erase(to);
    mounts_[from] = std::move(old);
    return persisted;
  }
  LogInfo("moved the %s engine from %s to %s", type, from, to);
  return absl::OkStatus();
}

}  // namespace strongroom::core
