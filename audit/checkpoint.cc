#include "audit/checkpoint.h"

#include <vector>

#include "audit/note.h"

namespace strongroom::audit {

namespace {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    if (eol == std::string_view::npos) {
      lines.push_back(text);
      break;
    }
    lines.push_back(text.substr(0, eol));
    text.remove_prefix(eol + 1);
  }
  return lines;
}

}  // namespace

std::string Checkpoint::Origin() const {
  return std::string(kOriginPrefix) + device_id + "/" + node_id;
}

bool IsValidIdComponent(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidTimestamp(std::string_view time) {
  if (time.empty() || time.size() > 64) return false;
  for (char c : time) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == ':' || c == '.' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> FormatCheckpointText(const Checkpoint& cp) {
  if (!IsValidIdComponent(cp.device_id)) return Err("invalid device ID");
  if (!IsValidIdComponent(cp.node_id)) return Err("invalid node ID");
  if (!IsValidTimestamp(cp.time)) return Err("invalid checkpoint time");
  if (cp.head_seq == 0 && cp.head_hash != Hash{}) return Err("head hash without a head line");
  std::string text = cp.Origin();
  text += "\n" + std::to_string(cp.tree_size) + "\n" + Base64Encode(AsBytes(cp.root)) + "\n";
  text += "head " + std::to_string(cp.head_seq) + " " + HexEncode(cp.head_hash) + "\n";
  text += "time " + cp.time + "\n";
  return text;
}

Result<Checkpoint> ParseCheckpointText(std::string_view text) {
  if (text.empty() || text.back() != '\n') return Err("checkpoint text must end in a newline");
  const std::vector<std::string_view> lines = SplitLines(text);
  if (lines.size() != 5) {
    return Err("checkpoint must have exactly 5 lines (origin, size, root, head, time), has " +
               std::to_string(lines.size()));
  }
  Checkpoint cp;
  std::string_view origin = lines[0];
  if (origin.substr(0, kOriginPrefix.size()) != kOriginPrefix) {
    return Err("checkpoint origin does not start with \"strongroom-audit/\"");
  }
  origin.remove_prefix(kOriginPrefix.size());
  const size_t slash = origin.find('/');
  if (slash == std::string_view::npos) return Err("checkpoint origin lacks the node ID");
  cp.device_id = std::string(origin.substr(0, slash));
  cp.node_id = std::string(origin.substr(slash + 1));
  if (!IsValidIdComponent(cp.device_id) || !IsValidIdComponent(cp.node_id)) {
    return Err("invalid device or node ID in checkpoint origin");
  }
  std::optional<uint64_t> size = ParseDecimalU64(lines[1]);
  if (!size) return Err("invalid checkpoint tree size");
  cp.tree_size = *size;
  std::optional<Hash> root = HashFromBase64(lines[2]);
  if (!root) return Err("invalid checkpoint root hash (want base64 of 32 bytes)");
  cp.root = *root;

  std::string_view head = lines[3];
  if (head.substr(0, 5) != "head ") return Err("checkpoint line 4 must be \"head <seq> <hash>\"");
  head.remove_prefix(5);
  const size_t space = head.find(' ');
  if (space == std::string_view::npos) return Err("malformed checkpoint head line");
  std::optional<uint64_t> head_seq = ParseDecimalU64(head.substr(0, space));
  std::optional<Hash> head_hash = HashFromHex(head.substr(space + 1));
  if (!head_seq || !head_hash) return Err("malformed checkpoint head line");
  cp.head_seq = *head_seq;
  cp.head_hash = *head_hash;
  if (cp.head_seq == 0 && cp.head_hash != Hash{}) return Err("head hash without a head line");

  std::string_view time = lines[4];
  if (time.substr(0, 5) != "time ") return Err("checkpoint line 5 must be \"time <timestamp>\"");
  time.remove_prefix(5);
  if (!IsValidTimestamp(time)) return Err("invalid checkpoint time");
  cp.time = std::string(time);
  return cp;
}

Result<Checkpoint> OpenCheckpoint(std::string_view note, std::span<const PublicKey> keys) {
  AUDIT_ASSIGN_OR_RETURN(SignedNote signed_note, ParseSignedNote(note));
  AUDIT_ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointText(signed_note.text));
  AUDIT_RETURN_IF_ERROR(VerifyNoteSignatures(signed_note, cp.Origin(), keys));
  return cp;
}

}  // namespace strongroom::audit
