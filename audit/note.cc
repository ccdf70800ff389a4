#include "audit/note.h"

#include "audit/encoding.h"

namespace strongroom::audit {

namespace {

// Decodes one UTF-8 sequence at s[i] (input already validated); advances i.
uint32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto c = static_cast<unsigned char>(s[*i]);
  size_t n = 0;
  uint32_t cp = c;
  if (c >= 0xF0) {
    n = 3, cp = c & 0x07u;
  } else if (c >= 0xE0) {
    n = 2, cp = c & 0x0Fu;
  } else if (c >= 0xC0) {
    n = 1, cp = c & 0x1Fu;
  }
  for (size_t k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3Fu);
  *i += n + 1;
  return cp;
}

// Unicode White_Space.
bool IsUnicodeSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || !IsValidUtf8(name)) return false;
  size_t i = 0;
  while (i < name.size()) {
    const uint32_t cp = NextCodePoint(name, &i);
    if (cp == '+' || cp < 0x20 || IsUnicodeSpace(cp)) return false;
  }
  return true;
}

Result<SignedNote> ParseSignedNote(std::string_view note) {
  if (note.size() > kMaxNoteBytes) return Err("signed note larger than 64 KiB");
  if (!IsValidUtf8(note)) return Err("signed note is not valid UTF-8");
  for (char c : note) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') {
      return Err("signed note contains a control character");
    }
  }
  if (note.empty() || note.back() != '\n') return Err("signed note does not end in a newline");
  // The text is separated from the signatures by the last blank line.
  const size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return Err("signed note has no signature block");
  SignedNote out;
  out.text = std::string(note.substr(0, split + 1));
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) return Err("signed note has no signatures");
  while (!sigs.empty()) {
    const size_t eol = sigs.find('\n');  // present: the note ends in '\n'
    std::string_view line = sigs.substr(0, eol);
    sigs.remove_prefix(eol + 1);
    if (out.signatures.size() == kMaxNoteSignatures) return Err("too many signatures on note");
    if (line.substr(0, kNoteSignaturePrefix.size()) != kNoteSignaturePrefix) {
      return Err("malformed signature line (want \"\xE2\x80\x94 <name> <base64>\")");
    }
    line.remove_prefix(kNoteSignaturePrefix.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return Err("malformed signature line");
    NoteSignature sig;
    sig.key_name = std::string(line.substr(0, space));
    if (!IsValidKeyName(sig.key_name)) return Err("invalid key name in signature line");
    std::optional<std::string> blob = Base64Decode(line.substr(space + 1));
    if (!blob || blob->size() < 5) return Err("malformed signature in signature line");
    sig.key_id = (static_cast<uint32_t>(static_cast<unsigned char>((*blob)[0])) << 24) |
                 (static_cast<uint32_t>(static_cast<unsigned char>((*blob)[1])) << 16) |
                 (static_cast<uint32_t>(static_cast<unsigned char>((*blob)[2])) << 8) |
                 static_cast<uint32_t>(static_cast<unsigned char>((*blob)[3]));
    sig.signature = blob->substr(4);
    out.signatures.push_back(std::move(sig));
  }
  return out;
}

std::string FormatNoteSignatureLine(std::string_view key_name, uint32_t key_id,
                                    std::string_view signature) {
  std::string blob;
  blob.push_back(static_cast<char>((key_id >> 24) & 0xff));
  blob.push_back(static_cast<char>((key_id >> 16) & 0xff));
  blob.push_back(static_cast<char>((key_id >> 8) & 0xff));
  blob.push_back(static_cast<char>(key_id & 0xff));
  blob.append(signature);
  std::string line(kNoteSignaturePrefix);
  line.append(key_name);
  line.push_back(' ');
  line.append(Base64Encode(blob));
  line.push_back('\n');
  return line;
}

Status VerifyNoteSignatures(const SignedNote& note, std::string_view key_name,
                            std::span<const PublicKey> keys) {
  size_t verified = 0;
  for (const NoteSignature& sig : note.signatures) {
    if (sig.key_name != key_name) continue;
    bool known = false;
    bool good = false;
    for (const PublicKey& key : keys) {
      if (key.KeyId(key_name) != sig.key_id) continue;
      known = true;
      if (key.Verify(note.text, sig.signature)) {
        good = true;
        break;
      }
    }
    if (known && !good) return Err("signature by the audit key does not verify");
    if (good) ++verified;
  }
  if (verified == 0) return Err("not signed by the audit key (no signature from a trusted key)");
  return OkStatus();
}

}  // namespace strongroom::audit
