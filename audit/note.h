// C2SP signed notes (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, then
// one or more lines "— <key name> <base64(key ID (4 bytes, big-endian) || signature)>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "audit/keys.h"
#include "audit/result.h"

namespace strongroom::audit {

// U+2014 EM DASH, then a space.
inline constexpr std::string_view kNoteSignaturePrefix = "\xE2\x80\x94 ";
// Limits on untrusted notes (the spec asks verifiers to cap signatures; it requires >= 16).
inline constexpr size_t kMaxNoteBytes = 64 * 1024;
inline constexpr size_t kMaxNoteSignatures = 100;

struct NoteSignature {
  std::string key_name;
  uint32_t key_id = 0;
  std::string signature;  // without the key ID
};

struct SignedNote {
  std::string text;  // what the signatures cover, final newline included
  std::vector<NoteSignature> signatures;
};

// Non-empty, valid UTF-8, no Unicode white space and no '+'.
bool IsValidKeyName(std::string_view name);

// Syntax only: no signature is checked.
Result<SignedNote> ParseSignedNote(std::string_view note);

// "— <name> <base64(key_id || signature)>\n"
std::string FormatNoteSignatureLine(std::string_view key_name, uint32_t key_id,
                                    std::string_view signature);

// The signed-note verification rule: signatures whose key name equals `key_name` and whose key
// ID matches one of `keys` must all verify, and there must be at least one; signatures from
// other keys are ignored.
Status VerifyNoteSignatures(const SignedNote& note, std::string_view key_name,
                            std::span<const PublicKey> keys);

}  // namespace strongroom::audit
