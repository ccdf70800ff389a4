#include "appliance/core/audit.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <span>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "appliance/core/audit_file.h"
#include "appliance/core/mount_entry.h"
#include "appliance/core/seal.h"
#include "appliance/core/token_store.h"
#include "audit/chain.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "base/log.h"
#include "base/metrics_catalog.h"
#include "base/status_macros.h"

namespace strongroom::core {
namespace {

constexpr char kTableKey[] = "core/audit";
constexpr char kDevicePrefix[] = "sys/audit/";  // sys/audit/<uuid>/{salt,state}
constexpr char kHashPrefix[] = "hmac-sha256:";
constexpr std::string_view kReservedPaths[] = {"public-key", "checkpoint"};
// Options a file device takes. Anything else is refused rather than silently ignored.
constexpr std::string_view kKnownOptions[] = {"file_path",
                                              "mode",
                                              "format",
                                              "hmac_accessor",
                                              "log_raw",
                                              "elide_list_responses",
                                              "prefix",
                                              "checkpoint_entries",
                                              "checkpoint_interval"};

// A record asked for while the device table is not loaded (the node is unsealing, reloading as
// the active node, or sealing).
absl::Status NotLoaded() {
  return absl::UnavailableError("the audit devices are not loaded yet; retry");
}

}  // namespace

// A device's HMAC key (its salt: a UUID string, as Vault's) and an HMAC-SHA256 context keyed
// with it, which every digest copies: no per-value algorithm fetch, and safe to share between
// threads (the template is never changed after construction).
class AuditSalt {
 public:
  AuditSalt() = default;
  explicit AuditSalt(std::string text) : text_(std::move(text)) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (ctx != nullptr && EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(text_.data()),
                                       text_.size(), params) == 1) {
      ctx_.reset(ctx, EVP_MAC_CTX_free);
    } else {
      EVP_MAC_CTX_free(ctx);
    }
  }
  const std::string& text() const { return text_; }

  // "hmac-sha256:" + lowercase hex of HMAC-SHA256(salt, value).
  std::string Hex(std::string_view value) const {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = 0;
    EVP_MAC_CTX* c = ctx_ ? EVP_MAC_CTX_dup(ctx_.get()) : nullptr;
    const bool ok = c != nullptr &&
                    EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(value.data()),
                                   value.size()) == 1 &&
                    EVP_MAC_final(c, out, &len, sizeof out) == 1;
    EVP_MAC_CTX_free(c);
    if (!ok) return SlowHmacHex(value);
    return absl::StrCat(
        kHashPrefix, absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(out), len)));
  }

 private:
  std::string SlowHmacHex(std::string_view value) const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), text_.data(), static_cast<int>(text_.size()),
         reinterpret_cast<const unsigned char*>(value.data()), value.size(), mac, &len);
    return absl::StrCat(
        kHashPrefix, absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(mac), len)));
  }

  std::string text_;
  std::shared_ptr<EVP_MAC_CTX> ctx_;
};

namespace {

// Records are rendered straight into the canonical JSON the chain hashes (audit/json.h), in one
// pass over the request's and response's own values: no record tree is built, copied, printed
// and parsed again. The bytes are those the record tree gave through Boost.JSON's printer and
// audit::ParseJson (tests/unit/core/testdata/audit_records.golden pins them), and what that parse
// refused is refused here too: a string or key in clear that is not UTF-8, a duplicate key,
// nesting deeper than the verifier reads (audit::kMaxJsonDepth, counting the record's own
// levels). A record that cannot be written fails its request closed, as before.
class CanonicalWriter {
 public:
  explicit CanonicalWriter(const AuditSalt& salt) : salt_(salt) {}

  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }
  // Marks the record as one that cannot be written (the first reason is kept).
  void Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

  // Appends `v`, whose nesting level in the record is `depth` (the record itself is 1). With
  // `digest`, every string and number leaf is written as its digest, keys, booleans and nulls
  // as they are: Vault decodes JSON numbers as strings (json.Number) and hashes them, so a PIN
  // or a card number sent as a number is no more in clear than one sent as a string. The digest
  // is of the number's decimal text (for a fraction, or an integer beyond uint64, which
  // Boost.JSON reads as a double: the shortest text that reads back as it, "4231.5", "1e+30",
  // which is what sys/audit-hash of a plain decimal finds). The worker bounds a body's depth
  // before it reaches the broker; the check here is the record's own.
  void Value(const json::value& v, bool digest, int depth, std::string* out) {
    switch (v.kind()) {
      case json::kind::null:
        out->append("null");
        return;
      case json::kind::bool_:
        out->append(v.get_bool() ? "true" : "false");
        return;
      case json::kind::string: {
        const std::string_view text(v.get_string().data(), v.get_string().size());
        if (digest) {
          Digest(text, out);
        } else {
          String(text, out);
        }
        return;
      }
      case json::kind::int64:
      case json::kind::uint64:
        if (digest) {
          Digest(json::serialize(v), out);
        } else {
          out->append(json::serialize(v));
        }
        return;
      case json::kind::double_: {
        if (digest) {
          char text[64];
          const auto [end, ec] = std::to_chars(text, text + sizeof text, v.get_double());
          Digest(ec == std::errc() ? std::string(text, static_cast<size_t>(end - text))
                                   : json::serialize(v),
                 out);
          return;
        }
        // As Boost.JSON prints it, read back as the verifier reads it (a non-finite value
        // prints as null or as an out-of-range exponent).
        auto parsed = audit::ParseJson(json::serialize(v));
        if (!parsed.ok()) {
          return Fail(absl::StrCat("a number cannot be written: ", parsed.message()));
        }
        audit::AppendCanonicalJson(*parsed, out);
        return;
      }
      case json::kind::array: {
        if (depth > audit::kMaxJsonDepth) return Fail("nested too deeply");
        out->push_back('[');
        bool first = true;
        for (const json::value& item : v.get_array()) {
          if (!first) out->push_back(',');
          first = false;
          Value(item, digest, depth + 1, out);
          if (!ok()) return;
        }
        out->push_back(']');
        return;
      }
      case json::kind::object:
        Object(v.get_object(), digest, depth, out);
        return;
    }
  }

  void Object(const json::object& o, bool digest, int depth, std::string* out) {
    if (depth > audit::kMaxJsonDepth) return Fail("nested too deeply");
    std::vector<std::pair<std::string_view, const json::value*>> members;
    members.reserve(o.size());
    for (const auto& kv : o) {
      members.emplace_back(std::string_view(kv.key().data(), kv.key().size()), &kv.value());
    }
    // std::string_view compares bytes as unsigned: the canonical member order.
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out->push_back('{');
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) {
        if (members[i].first == members[i - 1].first) return Fail("an object has a key twice");
        out->push_back(',');
      }
      String(members[i].first, out);
      if (!ok()) return;
      out->push_back(':');
      Value(*members[i].second, digest, depth + 1, out);
      if (!ok()) return;
    }
    out->push_back('}');
  }

  // A string in clear.
  void String(std::string_view text, std::string* out) {
    if (!audit::IsValidUtf8(text)) return Fail("a string is not valid UTF-8");
    audit::AppendJsonString(text, out);
  }
  // A value's digest, as a JSON string.
  void Digest(std::string_view plain, std::string* out) {
    out->push_back('"');
    out->append(salt_.Hex(plain));
    out->push_back('"');
  }

 private:
  const AuditSalt& salt_;
  std::string error_;
};

// An object of the record being rendered: (key, canonical value) members, in any order.
class Members {
 public:
  explicit Members(CanonicalWriter* w) : w_(w) {}
  void Raw(std::string key, std::string canonical) {
    members_.emplace_back(std::move(key), std::move(canonical));
  }
  void Str(std::string key, std::string_view text) {
    std::string v;
    w_->String(text, &v);
    Raw(std::move(key), std::move(v));
  }
  void Int(std::string key, int64_t n) { Raw(std::move(key), absl::StrCat(n)); }
  void Value(std::string key, const json::value& v, bool digest, int depth) {
    std::string out;
    w_->Value(v, digest, depth, &out);
    Raw(std::move(key), std::move(out));
  }
  void StrList(std::string key, const std::vector<std::string>& list) {
    std::string v = "[";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) v.push_back(',');
      w_->String(list[i], &v);
    }
    v.push_back(']');
    Raw(std::move(key), std::move(v));
  }
  // The members as one canonical object.
  std::string Render() {
    std::sort(members_.begin(), members_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out = "{";
    for (size_t i = 0; i < members_.size(); ++i) {
      if (i > 0) out.push_back(',');
      if (i > 0 && members_[i].first == members_[i - 1].first) {
        w_->Fail("an object has a key twice");
      }
      w_->String(members_[i].first, &out);
      out.push_back(':');
      out.append(members_[i].second);
    }
    out.push_back('}');
    return out;
  }
  std::vector<std::pair<std::string, std::string>>& members() { return members_; }

 private:
  CanonicalWriter* w_;
  std::vector<std::pair<std::string, std::string>> members_;
};

absl::StatusOr<bool> BoolOption(const std::map<std::string, std::string>& o, const std::string& k,
                                bool def) {
  auto it = o.find(k);
  if (it == o.end() || it->second.empty()) return def;
  const std::string v = absl::AsciiStrToLower(it->second);
  if (v == "true" || v == "1" || v == "t") return true;
  if (v == "false" || v == "0" || v == "f") return false;
  return absl::InvalidArgumentError(absl::StrCat("option \"", k, "\" must be a boolean"));
}

// Saved chain state: {"seq","hash","tree_size","nodes":[hex...],"offset","note"}.
std::string StateToJson(const audit::ChainState& s, uint64_t offset, const std::string& note) {
  json::object o;
  o["seq"] = s.last_seq;
  o["hash"] = audit::HexEncode(s.last_hash);
  o["tree_size"] = s.tree.size();
  json::array nodes;
  for (const auto& n : s.tree.nodes()) nodes.emplace_back(audit::HexEncode(n));
  o["nodes"] = std::move(nodes);
  o["offset"] = offset;
  o["note"] = note;
  return Serialize(o);
}

// Whether the file `path` starts a chain of this node: its first line is the signed checkpoint
// of the empty log under the origin of `device_id` and `node_id`, by one of `keys`. A Raft node
// starts each chain so (OpenDevice), before it can save any state for it.
bool StartsChainOf(const std::string& path, std::string_view device_id, std::string_view node_id,
                   std::span<const audit::PublicKey> keys) {
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (rfd < 0) return false;
  struct stat rs {};
  std::string head;
  if (::fstat(rfd, &rs) == 0 && S_ISREG(rs.st_mode)) {
    // A checkpoint line of the empty log is a few hundred bytes; 128 KiB bounds the read.
    head.resize(128 * 1024);
    ssize_t n = 0;
    do {
      n = ::pread(rfd, head.data(), head.size(), 0);
    } while (n < 0 && errno == EINTR);
    head.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(rfd);
  const size_t nl = head.find('\n');
  if (nl == std::string::npos) return false;
  auto rec = audit::ParseChainedLine(std::string_view(head).substr(0, nl));
  if (!rec.ok() || !rec->is_checkpoint || rec->seq != 1) return false;
  auto cp = audit::OpenCheckpoint(rec->note, keys);
  return cp.ok() && cp->device_id == device_id && cp->node_id == node_id && cp->tree_size == 0 &&
         cp->head_seq == 0;
}

absl::StatusOr<audit::Hash> HashFromHex(std::string_view hex) {
  auto h = audit::HashFromHex(hex);
  if (!h) return absl::DataLossError("saved audit state: bad hash");
  return *h;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Device table entries

json::object AuditDeviceEntry::ToJson() const {
  json::object o;
  o["path"] = path;
  o["type"] = type;
  o["description"] = description;
  json::object opts;
  for (const auto& [k, v] : options) opts[k] = v;
  o["options"] = std::move(opts);
  o["local"] = local;
  o["uuid"] = uuid;
  return o;
}

absl::StatusOr<AuditDeviceEntry> AuditDeviceEntry::FromJson(const json::object& o) {
  AuditDeviceEntry e;
  ASSIGN_OR_RETURN(auto path, GetString(o, "path"));
  ASSIGN_OR_RETURN(auto type, GetString(o, "type"));
  ASSIGN_OR_RETURN(auto description, GetString(o, "description"));
  ASSIGN_OR_RETURN(auto uuid, GetString(o, "uuid"));
  ASSIGN_OR_RETURN(auto local, GetBool(o, "local"));
  if (!path || !uuid) return absl::DataLossError("audit table entry without path or uuid");
  e.path = *path;
  e.type = type.value_or("file");
  e.description = description.value_or("");
  e.uuid = *uuid;
  e.local = local.value_or(false);
  if (const auto* opts = o.if_contains("options"); opts != nullptr && opts->is_object()) {
    for (const auto& [k, v] : opts->as_object()) {
      if (v.is_string()) e.options[std::string(k)] = std::string(v.as_string());
    }
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// One file device: its salt, its file and its chain.

class AuditBroker::Device {
 public:
  AuditDeviceEntry entry;
  AuditSalt salt;
  std::string device_id;  // path without the slash: the origin's first component
  std::string file_path;
  bool hmac_accessor = true;
  bool elide_list_responses = false;
  bool usable = true;  // false: its salt or state could not be loaded; it refuses every write
  std::unique_ptr<AuditFile> file;  // the chain, its batches, checkpoints and recovery
};

// ---------------------------------------------------------------------------------------------

AuditBroker::AuditBroker(storage::Storage* barrier, Seal* seal, std::function<absl::Time()> clock)
    : barrier_(barrier), seal_(seal), clock_(std::move(clock)) {}

AuditBroker::~AuditBroker() = default;

void AuditBroker::set_settings(AuditSettings settings) {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = std::move(settings);
}

std::string AuditBroker::StateKey(const std::string& uuid) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!settings_.per_node_state) return absl::StrCat(kDevicePrefix, uuid, "/state");
  return absl::StrCat(kDevicePrefix, uuid, "/state-", settings_.node_id);
}

absl::StatusOr<std::string> AuditBroker::NormalizePath(std::string_view raw) {
  absl::string_view p(raw.data(), raw.size());
  p = absl::StripPrefix(p, "/");
  p = absl::StripSuffix(p, "/");
  if (p.empty()) return absl::InvalidArgumentError("missing audit device path");
  if (!audit::IsValidIdComponent(std::string_view(p.data(), p.size()))) {
    return absl::InvalidArgumentError(
        "audit device path must be one segment of letters, digits, '.', '_' and '-' (at most 128 "
        "characters)");
  }
  for (auto r : kReservedPaths) {
    if (std::string_view(p.data(), p.size()) == r) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", p, "\" is a reserved path under sys/audit"));
    }
  }
  return absl::StrCat(p, "/");
}

bool AuditBroker::HasDevices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !devices_.empty();
}

std::vector<AuditDeviceEntry> AuditBroker::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AuditDeviceEntry> out;
  for (const auto& [path, d] : devices_) out.push_back(d->entry);
  return out;
}

absl::Status AuditBroker::PersistTable() {
  json::array table;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [path, d] : devices_) table.emplace_back(d->entry.ToJson());
  }
  json::object o;
  o["entries"] = std::move(table);
  return barrier_->Put(kTableKey, Serialize(o));
}

// Builds the device from its entry; `fresh`: a new device (new salt, empty file, first
// checkpoint), otherwise the saved salt and chain state are loaded and the file's tail folded in.
absl::StatusOr<std::unique_ptr<AuditBroker::Device>> AuditBroker::OpenDevice(
    const AuditDeviceEntry& entry, bool fresh) {
  auto d = std::make_unique<Device>();
  d->entry = entry;
  d->device_id = entry.path.substr(0, entry.path.size() - 1);
  AuditSettings settings;
  {
    std::lock_guard<std::mutex> lock(mu_);
    settings = settings_;
  }
  AuditFileOptions fo;
  fo.node_id = settings.node_id;
  fo.device_id = d->device_id;
  fo.seal = seal_;
  fo.clock = clock_;
  fo.checkpoint_entries = settings.checkpoint_entries;
  fo.checkpoint_interval = settings.checkpoint_interval;
  if (entry.type != "file") {
    return absl::InvalidArgumentError(absl::StrCat("audit device type \"", entry.type,
                                                   "\" is not supported; strongroom has \"file\""));
  }
  for (const auto& [k, v] : entry.options) {
    if (std::find(std::begin(kKnownOptions), std::end(kKnownOptions), k) ==
        std::end(kKnownOptions)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown audit option \"", k, "\""));
    }
  }
  const auto opt = [&](const std::string& k) -> std::string {
    auto it = entry.options.find(k);
    return it == entry.options.end() ? "" : it->second;
  };
  d->file_path = opt("file_path");
  if (d->file_path.empty()) return absl::InvalidArgumentError("file_path is required");
  if (d->file_path.front() != '/') {
    return absl::InvalidArgumentError(
        "file_path must be an absolute path: audit logs are hash-chained files (\"stdout\" and "
        "\"discard\" are not supported)");
  }
  if (!opt("format").empty() && opt("format") != "json") {
    return absl::InvalidArgumentError("format must be \"json\"");
  }
  if (!opt("prefix").empty()) {
    return absl::InvalidArgumentError(
        "prefix is not supported: every audit line is exactly one hash-chained JSON object");
  }
  ASSIGN_OR_RETURN(bool log_raw, BoolOption(entry.options, "log_raw", false));
  if (log_raw) {
    return absl::InvalidArgumentError(
        "log_raw is not supported: secrets and tokens are never written to the audit log in the "
        "clear");
  }
  ASSIGN_OR_RETURN(d->hmac_accessor, BoolOption(entry.options, "hmac_accessor", true));
  ASSIGN_OR_RETURN(d->elide_list_responses,
                   BoolOption(entry.options, "elide_list_responses", false));
  if (const std::string m = opt("mode"); !m.empty()) {
    unsigned long parsed = 0;
    char* end = nullptr;
    parsed = std::strtoul(m.c_str(), &end, 8);
    if (end == nullptr || *end != '\0' || (parsed != 0600 && parsed != 0640)) {
      return absl::InvalidArgumentError(
          "mode must be \"0600\" or \"0640\": an audit file grants nothing to others");
    }
    fo.mode = static_cast<mode_t>(parsed);
  }
  if (const std::string n = opt("checkpoint_entries"); !n.empty()) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(n, &v) || v == 0) {
      return absl::InvalidArgumentError("checkpoint_entries must be a positive integer");
    }
    fo.checkpoint_entries = v;
  }
  if (const std::string t = opt("checkpoint_interval"); !t.empty()) {
    auto secs = ParseDurationSeconds(t);
    if (!secs.ok() || *secs <= 0) {
      return absl::InvalidArgumentError("checkpoint_interval must be a positive duration");
    }
    fo.checkpoint_interval = absl::Seconds(*secs);
  }

  const std::string base = absl::StrCat(kDevicePrefix, entry.uuid, "/");
  // A chain that starts here (a new device, or a Raft node without chain state of its own: it
  // joined, or the device was enabled on another node) is signed by this node's own audit key,
  // made in its token if absent. A chain that continues needs the key that signed it so far.
  bool new_chain = fresh;
  if (!fresh && settings.per_node_state) {
    ASSIGN_OR_RETURN(auto own_state, barrier_->Get(StateKey(entry.uuid)));
    new_chain = !own_state.has_value();
  }
  ASSIGN_OR_RETURN(std::string der, seal_->AuditPublicKeyDer(/*create=*/new_chain));
  auto key = audit::PublicKey::FromDer(der);
  if (!key.ok()) return absl::InternalError(absl::StrCat("audit public key: ", key.message()));
  fo.keys.push_back(std::move(key).value());
  fo.path = d->file_path;
  const std::string state_key = StateKey(entry.uuid);
  fo.save = [barrier = barrier_, state_key](const audit::ChainState& st, uint64_t offset,
                                            const std::string& note) {
    return barrier->Put(state_key, StateToJson(st, offset, note));
  };
  d->file = std::make_unique<AuditFile>(std::move(fo));

  if (fresh) {
    d->salt = AuditSalt(NewUuid());
    RETURN_IF_ERROR(d->file->OpenNew(
        absl::StatusCode::kInvalidArgument,
        "is not empty; a new audit device starts a new hash chain and needs a new file"));
    RETURN_IF_ERROR(barrier_->Put(base + "salt", d->salt.text()));
    return d;
  }
  ASSIGN_OR_RETURN(auto salt, barrier_->Get(base + "salt"));
  ASSIGN_OR_RETURN(auto saved, barrier_->Get(state_key));
  if (salt && !saved && settings.per_node_state) {
    // A Raft node that has not written this device yet (it joined, the device was enabled on
    // another node, or it was re-added under its old node_id with a new data directory, which
    // gave it a new incarnation): a new chain, in a file that must be empty.
    d->salt = AuditSalt(*salt);
    std::vector<audit::PublicKey> own_keys;
    if (auto k = audit::PublicKey::FromDer(der); k.ok()) own_keys.push_back(std::move(k).value());
    if (!StartsChainOf(d->file_path, d->device_id, settings.node_id, own_keys)) {
      RETURN_IF_ERROR(d->file->OpenNew(
          absl::StatusCode::kDataLoss,
          absl::StrCat("is not empty but node ", settings.node_id,
                       " has no chain state for it (a new or re-added node starts a new chain); "
                       "archive the file (it is an earlier chain) and restart to start a new "
                       "chain")));
      // The chain opens with a signed checkpoint of the empty log, as Enable's test write does.
      // It names the chain's origin, so that a restart finds the file to be this node's own
      // chain even when no state was saved for it: only the active node writes storage, so a
      // standby never can, and the active node does so at its first checkpoint.
      LogInfo("audit device %s: node %s starts a new chain in %s", entry.path, settings.node_id,
              d->file_path);
      auto opened = d->file->Checkpoint(/*force=*/true);
      if (d->file->state().last_seq == 0) {
        d->file->Close();
        return absl::UnavailableError(absl::StrCat(
            "audit device ", entry.path, ": cannot start a chain: ", opened.status().message()));
      }
      return d;  // the state, unless saved already, is saved at the next checkpoint
    }
    // This node's chain, from before it saved any state for it (it stopped, or crashed, before
    // its first checkpoint as the active node): resumed from its start, below.
    LogInfo("audit device %s: %s is the chain node %s started; no state was saved for it yet",
            entry.path, d->file_path, settings.node_id);
    saved = StateToJson(audit::ChainState{}, 0, "");
  }
  if (!salt || !saved) {
    return absl::DataLossError(
        absl::StrCat("audit device ", entry.path, ": salt or state missing"));
  }
  d->salt = AuditSalt(*salt);
  ASSIGN_OR_RETURN(auto so, ParseObject(*saved));
  ASSIGN_OR_RETURN(auto seq, GetInt(so, "seq"));
  ASSIGN_OR_RETURN(auto hash, GetString(so, "hash"));
  ASSIGN_OR_RETURN(auto tree_size, GetInt(so, "tree_size"));
  ASSIGN_OR_RETURN(auto offset, GetInt(so, "offset"));
  ASSIGN_OR_RETURN(auto nodes, GetStringList(so, "nodes"));
  ASSIGN_OR_RETURN(auto note, GetString(so, "note"));
  if (!seq || !hash || !tree_size || !offset || !nodes) {
    return absl::DataLossError(absl::StrCat("audit device ", entry.path, ": state is incomplete"));
  }
  AuditFileSaved resume;
  resume.state.last_seq = static_cast<uint64_t>(*seq);
  ASSIGN_OR_RETURN(resume.state.last_hash, HashFromHex(*hash));
  std::vector<audit::Hash> node_hashes;
  for (const auto& n : *nodes) {
    ASSIGN_OR_RETURN(auto h, HashFromHex(n));
    node_hashes.push_back(h);
  }
  auto range = audit::CompactRange::FromNodes(static_cast<uint64_t>(*tree_size), node_hashes);
  if (!range.ok()) return absl::DataLossError(absl::StrCat("saved audit state: ", range.message()));
  resume.state.tree = std::move(range).value();
  resume.offset = static_cast<uint64_t>(*offset);
  resume.note = note.value_or("");
  struct stat st {};
  if (::lstat(d->file_path.c_str(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) < resume.offset) {
    // Not a fresh log: the chain continues at seq N+1, and the verifier reports the lines
    // missing before it unless they are in the files rotated out before this one.
    LogError(
        "audit device %s: %s is shorter than when this node's chain state was saved (%d bytes): "
        "it was deleted, emptied or replaced, or rotated without SIGHUP; the chain continues at "
        "seq %d, not at seq 1",
        entry.path, d->file_path, resume.offset, resume.state.last_seq + 1);
  }
  if (absl::Status s = d->file->Resume(resume); !s.ok()) {
    // Kept, refusing writes (requests fail closed) until SIGHUP finds the file again.
    LogError("audit device %s: %s", entry.path, s.message());
  }
  return d;
}

absl::Status AuditBroker::Load() {
  ASSIGN_OR_RETURN(auto raw, barrier_->Get(kTableKey));
  if (!raw) {
    std::lock_guard<std::mutex> lock(mu_);
    loaded_ = true;  // no device was ever enabled
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(auto o, ParseObject(*raw));
  const auto* entries = o.if_contains("entries");
  if (entries == nullptr || !entries->is_array()) return absl::DataLossError("audit table corrupt");
  for (const auto& v : entries->as_array()) {
    if (!v.is_object()) return absl::DataLossError("audit table corrupt");
    ASSIGN_OR_RETURN(auto entry, AuditDeviceEntry::FromJson(v.as_object()));
    auto d = OpenDevice(entry, /*fresh=*/false);
    if (!d.ok()) {
      // Kept in the table as a device that refuses every write: with no other device, requests
      // fail closed until an operator fixes or disables it.
      LogError("audit device %s cannot be used: %s", entry.path, d.status().message());
      auto broken = std::make_unique<Device>();
      broken->entry = entry;
      broken->usable = false;
      d = std::move(broken);
    }
    std::lock_guard<std::mutex> lock(mu_);
    devices_[entry.path] = std::move(*d);
  }
  std::lock_guard<std::mutex> lock(mu_);
  loaded_ = true;
  return absl::OkStatus();
}

void AuditBroker::Unload() {
  std::map<std::string, std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    loaded_ = false;
    devices.swap(devices_);
  }
  for (auto& [path, d] : devices) {
    if (d->usable) d->file->Close();
  }
}

absl::Status AuditBroker::Enable(AuditDeviceEntry entry) {
  std::lock_guard<std::mutex> table_lock(table_mu_);
  ASSIGN_OR_RETURN(entry.path, NormalizePath(entry.path));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (devices_.count(entry.path) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("path already in use: ", entry.path));
    }
    for (const auto& [path, d] : devices_) {
      if (d->file_path == entry.options["file_path"] && !d->file_path.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("audit device ", path, " already writes ",
                                                       d->file_path, "; pick another file_path"));
      }
    }
  }
  entry.uuid = NewUuid();
  ASSIGN_OR_RETURN(auto d, OpenDevice(entry, /*fresh=*/true));
  // The test write: the log opens with a signed checkpoint of the empty log.
  if (auto s = d->file->Checkpoint(/*force=*/true); !s.ok()) {
    (void)barrier_->Delete(absl::StrCat(kDevicePrefix, entry.uuid, "/salt"));
    return absl::InvalidArgumentError(
        absl::StrCat("audit device ", entry.path, ": test write failed: ", s.status().message()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    devices_[entry.path] = std::move(d);
  }
  if (absl::Status s = PersistTable(); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_.erase(entry.path);
    return s;
  }
  LogInfo("audit device %s enabled: %s", entry.path, entry.options["file_path"]);
  return absl::OkStatus();
}

absl::Status AuditBroker::Disable(const std::string& raw_path) {
  std::lock_guard<std::mutex> table_lock(table_mu_);
  ASSIGN_OR_RETURN(std::string path, NormalizePath(raw_path));
  std::shared_ptr<Device> d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(path);
    if (it == devices_.end()) return absl::OkStatus();  // Vault: disabling nothing succeeds
    d = it->second;
    devices_.erase(it);
  }
  RETURN_IF_ERROR(PersistTable());
  // The file ends signed: a closed log verifies with --require-signed-tail.
  if (d->usable) d->file->Close();
  const std::string base = absl::StrCat(kDevicePrefix, d->entry.uuid, "/");
  RETURN_IF_ERROR(barrier_->Delete(base + "salt"));  // old digests can no longer be recomputed
  RETURN_IF_ERROR(storage::DeletePrefix(*barrier_, base));  // every node's chain state
  LogInfo("audit device %s disabled", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditBroker::Hash(const std::string& raw_path,
                                              std::string_view input) const {
  ASSIGN_OR_RETURN(std::string path, NormalizePath(raw_path));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(path);
  if (it == devices_.end() || !it->second->usable) {
    return absl::InvalidArgumentError(absl::StrCat("unknown audit backend ", path));
  }
  return it->second->salt.Hex(input);
}

absl::StatusOr<std::string> AuditBroker::Checkpoint(const std::string& raw_path) {
  ASSIGN_OR_RETURN(std::string path, NormalizePath(raw_path));
  std::shared_ptr<Device> d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(path);
    if (it == devices_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown audit backend ", path));
    }
    d = it->second;
  }
  if (!d->usable) return absl::UnavailableError("audit device is not usable");
  return d->file->Checkpoint();
}

absl::StatusOr<std::string> AuditBroker::PublicKeyPem() {
  ASSIGN_OR_RETURN(std::string der, seal_->AuditPublicKeyDer(/*create=*/true));
  auto key = audit::PublicKey::FromDer(der);
  if (!key.ok()) return absl::InternalError(absl::StrCat("audit public key: ", key.message()));
  return key->ToPem();
}

void AuditBroker::Reopen() {
  std::map<std::string, std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    devices = devices_;
  }
  for (auto& [path, d] : devices) {
    if (!d->usable) continue;
    if (absl::Status s = d->file->Reopen(); !s.ok()) {
      LogError("audit device %s: reopen failed: %s; requests fail closed until it is fixed", path,
               s.message());
    }
  }
}

void AuditBroker::Tick() {
  std::map<std::string, std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    devices = devices_;
  }
  for (auto& [path, d] : devices) {
    if (d->usable) d->file->CheckpointIfDue();
  }
}

// ---------------------------------------------------------------------------------------------
// Records

namespace {

// The "auth" object of a record made with a token. `client_token` and `accessor` are the digests
// (or the accessor in clear, per the device's hmac_accessor) computed once per record.
std::string AuthObject(const TokenEntry& t, CanonicalWriter* w, const std::string& client_token,
                       const std::string& accessor) {
  Members a(w);
  a.Raw("client_token", client_token);
  a.Raw("accessor", accessor);
  a.Str("display_name", t.display_name);
  a.StrList("policies", t.policies);
  a.StrList("token_policies", t.policies);
  if (!t.meta.empty()) {
    std::string meta;
    w->Object(t.meta, /*digest=*/false, 3, &meta);
    a.Raw("metadata", std::move(meta));
  }
  if (!t.entity_id.empty()) a.Str("entity_id", t.entity_id);
  a.Str("token_type", t.type);
  a.Int("token_ttl", t.ttl);
  a.Str("token_issue_time", FormatRfc3339Nano(absl::FromUnixSeconds(t.creation_unix)));
  if (t.num_uses > 0) a.Int("remaining_uses", t.num_uses);
  return a.Render();
}

// A response's auth or wrap_info object, with the members named in `credentials` (strings, not
// empty) as digests; `accessors` among them stay in clear when the device says so.
std::string WithDigests(const json::object& o, std::initializer_list<std::string_view> credentials,
                        std::initializer_list<std::string_view> accessors, bool hmac_accessor,
                        CanonicalWriter* w) {
  Members m(w);
  for (const auto& kv : o) {
    const std::string_view key(kv.key().data(), kv.key().size());
    bool digest = false;
    if (kv.value().is_string() && !kv.value().get_string().empty() &&
        std::find(credentials.begin(), credentials.end(), key) != credentials.end()) {
      digest =
          hmac_accessor || std::find(accessors.begin(), accessors.end(), key) == accessors.end();
    }
    m.Value(std::string(key), kv.value(), digest, 4);
  }
  return m.Render();
}

}  // namespace

absl::Status AuditBroker::LogRequest(const AuditEvent& event) {
  metrics::Catalog& m = metrics::Get();
  const metrics::ScopedTimer timer(m.audit_log_request);
  absl::Status s = LogEvent(event, false);
  if (!s.ok()) m.audit_log_request_failure.Add();
  return s;
}
absl::Status AuditBroker::LogResponse(const AuditEvent& event) {
  metrics::Catalog& m = metrics::Get();
  const metrics::ScopedTimer timer(m.audit_log_response);
  absl::Status s = LogEvent(event, true);
  if (!s.ok()) m.audit_log_response_failure.Add();
  return s;
}

absl::Status AuditBroker::LogEvent(const AuditEvent& event, bool is_response) {
  std::vector<std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!loaded_) return NotLoaded();
    for (const auto& [path, d] : devices_) devices.push_back(d);
  }
  if (devices.empty()) return absl::OkStatus();
  const Request& req = *event.request;
  const std::string time = FormatRfc3339Nano(clock_());
  // A token or accessor in the path (a token-store path form Vault removed) is written as its
  // digest, in the path and where the error text repeats the path ("no handler for route ...").
  const size_t credential_at = CredentialOffsetInPath(req.path);
  int written = 0;
  for (const auto& d : devices) {
    if (!d->usable) continue;
    std::string path = req.path;
    std::string error = event.error;
    if (credential_at != std::string::npos) {
      path = absl::StrCat(absl::string_view(req.path.data(), credential_at),
                          d->salt.Hex(std::string_view(req.path).substr(credential_at)));
      error = absl::StrReplaceAll(error, {{req.path, path}});
    }
    CanonicalWriter w(d->salt);
    // The token's digests, computed once for the record's two places.
    std::string client_token;
    std::string accessor;
    if (!req.client_token.empty() || event.token != nullptr) {
      w.Digest(req.client_token, &client_token);
    }
    if (event.token != nullptr) {
      // A batch token has no accessor: "" stays "" (no digest of nothing).
      const std::string& plain = event.token->accessor;
      if (d->hmac_accessor && !plain.empty()) {
        w.Digest(plain, &accessor);
      } else {
        w.String(plain, &accessor);
      }
    }
    Members rec(&w);
    rec.Str("time", time);
    rec.Str("type", is_response ? "response" : "request");
    rec.Raw("auth", event.token != nullptr ? AuthObject(*event.token, &w, client_token, accessor)
                                           : std::string("{}"));
    Members r(&w);
    r.Str("id", req.request_id);
    r.Str("operation", OperationName(req.operation));
    if (req.mount != nullptr) {
      r.Str("mount_point", req.mount_path);
      r.Str("mount_type", req.mount_type);
      r.Str("mount_accessor", req.mount->accessor);
    }
    if (!req.client_token.empty()) {
      r.Raw("client_token", client_token);
      if (event.token != nullptr) r.Raw("client_token_accessor", accessor);
    }
    r.Raw("namespace", R"({"id":"root"})");
    r.Str("path", path);
    if (req.has_data && !req.data.empty() && !event.unauthenticated_refusal) {
      std::string data;
      w.Object(req.data, /*digest=*/true, 3, &data);
      r.Raw("data", std::move(data));
    }
    if (!req.remote_address.empty()) r.Str("remote_address", req.remote_address);
    if (req.remote_port != 0) r.Int("remote_port", req.remote_port);
    rec.Raw("request", r.Render());
    if (is_response) {
      Members resp(&w);
      if (req.mount != nullptr) {
        resp.Str("mount_point", req.mount_path);
        resp.Str("mount_type", req.mount_type);
        resp.Str("mount_accessor", req.mount->accessor);
      }
      if (const Response* out = event.response; out != nullptr) {
        if (out->auth) {
          resp.Raw("auth", WithDigests(*out->auth, {"client_token", "accessor"}, {"accessor"},
                                       d->hmac_accessor, &w));
        }
        if (out->wrap_info) {
          // The wrapping token is a credential: digests only, as Vault writes it.
          resp.Raw("wrap_info",
                   WithDigests(*out->wrap_info, {"token", "accessor", "wrapped_accessor"},
                               {"accessor", "wrapped_accessor"}, d->hmac_accessor, &w));
        }
        if (!out->lease_id.empty()) {
          Members secret(&w);
          secret.Str("lease_id", out->lease_id);
          resp.Raw("secret", secret.Render());
        }
        if (out->data) {
          // An elided list keeps only its count: the server's own number, not a client's value
          // (Vault leaves it in clear too).
          const bool elide = d->elide_list_responses && req.operation == Operation::kList;
          Members data(&w);
          for (const auto& kv : *out->data) {
            const std::string_view key(kv.key().data(), kv.key().size());
            const json::value& v = kv.value();
            if (elide && (key == "keys" || key == "key_info") && (v.is_array() || v.is_object())) {
              data.Int(std::string(key),
                       static_cast<int64_t>(v.is_array() ? v.get_array().size()
                                                         : v.get_object().size()));
              continue;
            }
            data.Value(std::string(key), v, /*digest=*/true, 4);
          }
          resp.Raw("data", data.Render());
        }
        if (!out->warnings.empty()) resp.StrList("warnings", out->warnings);
      }
      rec.Raw("response", resp.Render());
    }
    if (!error.empty()) rec.Str("error", error);
    // Keys are checked by Members::Render above; the record's own by PrepareRecord.
    auto prepared = w.ok() ? audit::PrepareRecord(std::move(rec.members()))
                           : audit::Result<audit::PreparedRecord>(audit::Err(w.error()));
    if (!prepared.ok()) {
      LogError("audit: device %s: record: %s", d->entry.path, prepared.message());
      continue;
    }
    // Returns once the line is on stable storage (group commit; see audit_file.h).
    if (absl::Status s = d->file->Append(std::move(prepared).value()); !s.ok()) {
      LogError("audit: device %s failed to log %s %s: %s", d->entry.path,
               is_response ? "response" : "request", req.request_id, s.message());
      continue;
    }
    ++written;
  }
  if (written == 0) {
    LogError("audit: no audit device succeeded in logging the %s of request %s",
             is_response ? "response" : "request", req.request_id);
    return InternalErrorWithPublicDetail(
        is_response ? "the operation ran, but no audit device could record its response"
                    : "no audit device could record the request, so it was not executed");
  }
  return absl::OkStatus();
}

absl::Status AuditBroker::LogSystemEvent(const AuditSystemEvent& event) {
  std::vector<std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!loaded_) return NotLoaded();
    for (const auto& [path, d] : devices_) devices.push_back(d);
  }
  if (devices.empty()) return absl::OkStatus();
  // No salt is involved: one record for every device.
  json::object rec;
  rec["time"] = FormatRfc3339Nano(clock_());
  rec["type"] = event.is_response ? "response" : "request";
  rec["auth"] = json::object();
  json::object r;
  r["id"] = event.request_id;
  r["operation"] = "update";
  json::object ns;
  ns["id"] = "root";
  r["namespace"] = std::move(ns);
  r["path"] = event.path;
  if (!event.data.empty()) r["data"] = event.data;
  rec["request"] = std::move(r);
  if (event.is_response) {
    json::object resp;
    if (!event.response_data.empty()) resp["data"] = event.response_data;
    rec["response"] = std::move(resp);
  }
  if (!event.error.empty()) rec["error"] = event.error;
  const std::string text = Serialize(rec);
  int written = 0;
  for (const auto& d : devices) {
    if (!d->usable) continue;
    auto parsed = audit::ParseJson(text);
    if (!parsed.ok()) {
      LogError("audit: device %s: record: %s", d->entry.path, parsed.message());
      continue;
    }
    // Returns once the line is on stable storage (group commit; see audit_file.h).
    if (absl::Status s = d->file->Append(std::move(parsed).value()); !s.ok()) {
      LogError("audit: device %s failed to log %s %s: %s", d->entry.path, event.path,
               event.request_id, s.message());
      continue;
    }
    ++written;
  }
  if (written == 0) {
    LogError("audit: no audit device succeeded in logging the %s of %s %s",
             event.is_response ? "response" : "request", event.path, event.request_id);
    return absl::InternalError(
        absl::StrCat("no audit device could record ", event.path, " ", event.request_id));
  }
  return absl::OkStatus();
}

}  // namespace strongroom::core
