#include "audit/chain.h"

#include <algorithm>
#include <utility>

#include "audit/note.h"

namespace strongroom::audit {

namespace {

const std::string& StringMember(const Json& obj, std::string_view key, bool* ok) {
  static const std::string kEmpty;
  const Json* v = obj.Find(key);
  if (v == nullptr || !v->is_string()) {
    *ok = false;
    return kEmpty;
  }
  *ok = true;
  return v->str();
}

// Adds the chain fields, hashes, and renders the line.
ChainedLine Chain(Json obj, const ChainState& state, bool is_leaf) {
  ChainedLine out;
  out.next = state;
  out.next.last_seq = state.last_seq + 1;
  obj.Set("seq", Json::Uint(out.next.last_seq));
  obj.Set("prev_hash", Json::String(HexEncode(state.last_hash)));
  const std::string canonical = CanonicalJson(obj);
  out.next.last_hash = Sha256({AsBytes(state.last_hash), canonical});
  if (is_leaf) out.next.tree.Append(HashLeaf(canonical));
  obj.Set("hash", Json::String(HexEncode(out.next.last_hash)));
  out.line = CanonicalJson(obj);
  out.line.push_back('\n');
  return out;
}

}  // namespace

Result<ChainedRecord> ParseChainedLine(std::string_view line) {
  if (line.size() > kMaxLineBytes) return Err("line longer than 16 MiB");
  if (line.empty()) return Err("empty line");
  AUDIT_ASSIGN_OR_RETURN(Json obj, ParseJson(line));
  if (!obj.is_object()) return Err("line is not a JSON object");
  if (CanonicalJson(obj) != line) {
    return Err("line is not in canonical JSON form (reformatted or edited)");
  }
  ChainedRecord rec;
  const Json* seq = obj.Find("seq");
  std::optional<uint64_t> seq_value = seq != nullptr ? seq->AsUint() : std::nullopt;
  if (!seq_value || *seq_value == 0) return Err("missing or invalid \"seq\"");
  rec.seq = *seq_value;
  bool ok = false;
  std::optional<Hash> prev = HashFromHex(StringMember(obj, "prev_hash", &ok));
  if (!ok || !prev) return Err("missing or invalid \"prev_hash\" (want 64 lowercase hex digits)");
  rec.prev_hash = *prev;
  std::optional<Hash> hash = HashFromHex(StringMember(obj, "hash", &ok));
  if (!ok || !hash) return Err("missing or invalid \"hash\" (want 64 lowercase hex digits)");
  rec.hash = *hash;
  rec.type = StringMember(obj, "type", &ok);
  if (!ok || rec.type.empty()) return Err("missing or invalid \"type\"");
  rec.time = StringMember(obj, "time", &ok);
  if (!ok || rec.time.empty()) return Err("missing or invalid \"time\"");
  rec.is_checkpoint = rec.type == kCheckpointType;
  rec.is_mac = rec.type == kMacType;
  rec.is_unproven = rec.type == kUnprovenType;
  if (rec.is_checkpoint) {
    const Json* frontier = obj.Find("frontier");
    if (obj.members().size() != (frontier != nullptr ? 7u : 6u)) {
      return Err("checkpoint line has unexpected fields");
    }
    rec.note = StringMember(obj, "checkpoint", &ok);
    if (!ok) return Err("checkpoint line without a \"checkpoint\" note");
    if (frontier != nullptr) {
      if (frontier->type() != Json::Type::kArray || frontier->items().size() > 64) {
        return Err("checkpoint \"frontier\" is not a list of at most 64 hashes");
      }
      rec.frontier.emplace();
      for (const Json& h : frontier->items()) {
        std::optional<Hash> node = h.is_string() ? HashFromHex(h.str()) : std::nullopt;
        if (!node) return Err("checkpoint \"frontier\" holds an invalid hash");
        rec.frontier->push_back(*node);
      }
    }
  } else if (rec.is_mac) {
    if (obj.members().size() != 6) return Err("mac line has unexpected fields");
    std::optional<Hash> mac = HashFromHex(StringMember(obj, "mac", &ok));
    if (!ok || !mac) return Err("mac line without a valid \"mac\" (want 64 lowercase hex digits)");
    rec.mac = *mac;
  } else if (rec.is_unproven) {
    if (obj.members().size() != 10) return Err("unproven marker has unexpected fields");
    const Json* lines = obj.Find("lines");
    const Json* bytes = obj.Find("bytes");
    const bool have_counts = lines != nullptr && lines->AsUint().has_value() && bytes != nullptr &&
                             bytes->AsUint().has_value();
    bool ok_sha = false, ok_path = false, ok_reason = false;
    const std::optional<Hash> sha = HashFromHex(StringMember(obj, "sha256", &ok_sha));
    rec.moved_to = StringMember(obj, "moved_to", &ok_path);
    rec.reason = StringMember(obj, "reason", &ok_reason);
    if (!have_counts || !ok_sha || !sha.has_value() || !ok_path || !ok_reason ||
        rec.reason.empty() || rec.reason.size() > kMaxMarkerReason ||
        rec.moved_to.size() > kMaxMarkerPath) {
      return Err(
          "unproven marker needs lines, bytes, sha256, moved_to and a reason (at most 1 KiB)");
    }
    rec.removed_lines = lines->AsUint().value_or(0);
    rec.removed_bytes = bytes->AsUint().value_or(0);
    rec.removed_sha256 = sha.value_or(Hash{});
  }

  Json without_hash = obj;
  without_hash.Erase("hash");
  rec.canonical = CanonicalJson(without_hash);
  if (Sha256({AsBytes(rec.prev_hash), rec.canonical}) != rec.hash) {
    return Err("\"hash\" does not match the line's content (line edited)");
  }
  rec.object = std::move(obj);
  return rec;
}

Result<ChainedLine> MakeChainedLine(std::string_view record_json, const ChainState& state) {
  AUDIT_ASSIGN_OR_RETURN(Json obj, ParseJson(record_json));
  return MakeChainedLine(std::move(obj), state);
}

Result<ChainedLine> MakeChainedLine(Json obj, const ChainState& state) {
  AUDIT_ASSIGN_OR_RETURN(PreparedRecord record, PrepareRecord(obj));
  return MakeChainedLine(record, state);
}

namespace {

// Which part of a PreparedRecord a member with this key goes to; -1 for the chain's own keys.
int PartOf(std::string_view key) {
  // std::string_view comparison is bytewise unsigned, the canonical member order.
  if (key < "hash") return 0;
  if (key == "hash") return -1;
  if (key < "prev_hash") return 1;
  if (key == "prev_hash") return -1;
  if (key < "seq") return 2;
  if (key == "seq") return -1;
  return 3;
}

void AppendMember(std::string* part, std::string_view key, std::string_view canonical_value) {
  if (!part->empty()) part->push_back(',');
  AppendJsonString(key, part);
  part->push_back(':');
  part->append(canonical_value);
}

Result<bool> CheckRecordType(std::string_view canonical_type) {
  if (canonical_type.size() < 3 || canonical_type.front() != '"' || canonical_type.back() != '"') {
    return Err("audit record needs a string \"type\"");
  }
  for (std::string_view reserved : {kCheckpointType, kMacType, kUnprovenType}) {
    if (canonical_type.substr(1, canonical_type.size() - 2) == reserved) {
      return Err("audit record type \"" + std::string(reserved) +
                 "\" is reserved for the chain's own lines");
    }
  }
  return true;
}

}  // namespace

Result<PreparedRecord> PrepareRecord(const Json& obj) {
  if (!obj.is_object()) return Err("audit record is not a JSON object");
  for (std::string_view reserved : {"seq", "prev_hash", "hash"}) {
    if (obj.Find(reserved) != nullptr) {
      return Err("audit record already has a \"" + std::string(reserved) + "\" member");
    }
  }
  bool ok = false;
  const std::string& type = StringMember(obj, "type", &ok);
  if (!ok || type.empty()) return Err("audit record needs a string \"type\"");
  if (type == kCheckpointType || type == kMacType || type == kUnprovenType) {
    return Err("audit record type \"" + type + "\" is reserved for the chain's own lines");
  }
  const std::string& time = StringMember(obj, "time", &ok);
  if (!ok || time.empty()) return Err("audit record needs a string \"time\"");
  PreparedRecord out;
  std::string value;
  for (const auto& [key, item] : obj.members()) {  // sorted by key
    value.clear();
    AppendCanonicalJson(item, &value);
    AppendMember(&out.part[PartOf(key)], key, value);
  }
  return out;
}

Result<PreparedRecord> PrepareRecord(std::vector<std::pair<std::string, std::string>> members) {
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  bool have_type = false;
  bool have_time = false;
  PreparedRecord out;
  for (size_t i = 0; i < members.size(); ++i) {
    const auto& [key, value] = members[i];
    if (i > 0 && members[i - 1].first == key) {
      return Err("audit record has two \"" + key + "\" members");
    }
    if (!IsValidUtf8(key)) return Err("audit record member name is not UTF-8");
    const int part = PartOf(key);
    if (part < 0) return Err("audit record already has a \"" + key + "\" member");
    if (value.empty()) return Err("audit record member \"" + key + "\" has no value");
    if (key == "type") {
      AUDIT_ASSIGN_OR_RETURN(have_type, CheckRecordType(value));
    } else if (key == "time") {
      if (value.size() < 3 || value.front() != '"' || value.back() != '"') {
        return Err("audit record needs a string \"time\"");
      }
      have_time = true;
    }
    AppendMember(&out.part[part], key, value);
  }
  if (!have_type) return Err("audit record needs a string \"type\"");
  if (!have_time) return Err("audit record needs a string \"time\"");
  return out;
}

Result<ChainedLine> MakeChainedLine(const PreparedRecord& record, const ChainState& state) {
  if (state.last_seq == UINT64_MAX) return Err("sequence number space exhausted");
  // The line is at least the record's members and the chain's (about 180 bytes).
  if (record.bytes() > kMaxLineBytes) return Err("audit record longer than 16 MiB");
  ChainedLine out;
  out.next = state;
  out.next.last_seq = state.last_seq + 1;
  std::string prev = "\"prev_hash\":\"" + HexEncode(state.last_hash) + "\"";
  std::string seq = "\"seq\":" + std::to_string(out.next.last_seq);
  std::string canonical;
  canonical.reserve(record.bytes() + prev.size() + seq.size() + 8);
  const auto add = [](std::string* to, std::string_view member) {
    if (member.empty()) return;
    if (to->size() > 1) to->push_back(',');
    to->append(member);
  };
  canonical.push_back('{');
  add(&canonical, record.part[0]);
  add(&canonical, record.part[1]);
  add(&canonical, prev);
  add(&canonical, record.part[2]);
  add(&canonical, seq);
  add(&canonical, record.part[3]);
  canonical.push_back('}');
  out.next.last_hash = Sha256({AsBytes(state.last_hash), canonical});
  out.next.tree.Append(HashLeaf(canonical));
  const std::string hash = "\"hash\":\"" + HexEncode(out.next.last_hash) + "\"";
  out.line.reserve(canonical.size() + hash.size() + 2);
  out.line.push_back('{');
  add(&out.line, record.part[0]);
  add(&out.line, hash);
  add(&out.line, record.part[1]);
  add(&out.line, prev);
  add(&out.line, record.part[2]);
  add(&out.line, seq);
  add(&out.line, record.part[3]);
  out.line.push_back('}');
  if (out.line.size() > kMaxLineBytes) return Err("audit record longer than 16 MiB");
  out.line.push_back('\n');
  return out;
}

Result<std::string> CheckpointBody(std::string_view device_id, std::string_view node_id,
                                   const ChainState& state, std::string_view time) {
  Checkpoint cp;
  cp.device_id = std::string(device_id);
  cp.node_id = std::string(node_id);
  cp.tree_size = state.tree.size();
  cp.root = state.tree.Root();
  cp.head_seq = state.last_seq;
  cp.head_hash = state.last_hash;
  cp.time = std::string(time);
  return FormatCheckpointText(cp);
}

Result<std::string> AttachSignature(std::string_view body_or_note, const PublicKey& key,
                                    std::string_view signature) {
  std::string text;
  std::string note;
  if (body_or_note.find("\n\n") != std::string_view::npos) {
    AUDIT_ASSIGN_OR_RETURN(SignedNote parsed, ParseSignedNote(body_or_note));
    text = parsed.text;
    note = std::string(body_or_note);
  } else {
    text = std::string(body_or_note);
    note = text + "\n";
  }
  AUDIT_ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointText(text));
  if (!key.Verify(text, signature)) return Err("signature does not verify with the audit key");
  const std::string origin = cp.Origin();
  note += FormatNoteSignatureLine(origin, key.KeyId(origin), signature);
  return note;
}

Result<std::string> SignCheckpoint(std::string_view body, const PrivateKey& key) {
  AUDIT_ASSIGN_OR_RETURN(std::string signature, key.Sign(body));
  AUDIT_ASSIGN_OR_RETURN(PublicKey pub, key.Public());
  return AttachSignature(body, pub, signature);
}

Result<ChainedLine> MakeCheckpointLine(std::string_view signed_note, const ChainState& state,
                                       std::span<const PublicKey> keys) {
  AUDIT_ASSIGN_OR_RETURN(Checkpoint cp, OpenCheckpoint(signed_note, keys));
  if (cp.tree_size != state.tree.size() || cp.root != state.tree.Root()) {
    return Err("checkpoint does not describe the current Merkle tree");
  }
  if (cp.head_seq != state.last_seq || cp.head_hash != state.last_hash) {
    return Err("checkpoint does not name the current chain head");
  }
  if (state.last_seq == UINT64_MAX) return Err("sequence number space exhausted");
  Json obj = Json::Object();
  obj.Set("checkpoint", Json::String(std::string(signed_note)));
  obj.Set("time", Json::String(cp.time));
  obj.Set("type", Json::String(std::string(kCheckpointType)));
  Json frontier = Json::Array();
  for (const Hash& h : state.tree.nodes()) frontier.Append(Json::String(HexEncode(h)));
  obj.Set("frontier", std::move(frontier));
  return Chain(std::move(obj), state, /*is_leaf=*/false);
}

std::string MacMessage(std::string_view origin, uint64_t seq, const Hash& prev_hash,
                       std::string_view time) {
  std::string m = "strongroom-audit-mac v1\n";
  m.append(origin);
  m += "\n" + std::to_string(seq) + " " + HexEncode(prev_hash) + "\n";
  m.append(time);
  m += "\n";
  return m;
}

Result<ChainedLine> MakeMacLine(const Hash& mac, std::string_view time, const ChainState& state) {
  if (state.last_seq == UINT64_MAX) return Err("sequence number space exhausted");
  if (time.empty()) return Err("mac line needs a time");
  Json obj = Json::Object();
  obj.Set("mac", Json::String(HexEncode(mac)));
  obj.Set("time", Json::String(std::string(time)));
  obj.Set("type", Json::String(std::string(kMacType)));
  return Chain(std::move(obj), state, /*is_leaf=*/false);
}

Result<ChainedLine> MakeUnprovenLine(const RemovedTail& removed, std::string_view time,
                                     const ChainState& state) {
  if (state.last_seq == UINT64_MAX) return Err("sequence number space exhausted");
  if (time.empty() || removed.reason.empty() || removed.reason.size() > kMaxMarkerReason ||
      removed.moved_to.size() > kMaxMarkerPath) {
    return Err("unproven marker needs a time and a reason (at most 1 KiB)");
  }
  Json obj = Json::Object();
  obj.Set("bytes", Json::Uint(removed.bytes));
  obj.Set("lines", Json::Uint(removed.lines));
  obj.Set("moved_to", Json::String(removed.moved_to));
  obj.Set("reason", Json::String(removed.reason));
  obj.Set("sha256", Json::String(HexEncode(removed.sha256)));
  obj.Set("time", Json::String(std::string(time)));
  obj.Set("type", Json::String(std::string(kUnprovenType)));
  return Chain(std::move(obj), state, /*is_leaf=*/false);
}

}  // namespace strongroom::audit
