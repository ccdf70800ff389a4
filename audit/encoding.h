// Byte-level helpers shared by the audit log writer and verifier: SHA-256, strict hex and base64,
// strict decimal integers and UTF-8 validation. "Strict" means every value has exactly one
// accepted spelling, so two different byte strings in a log never decode to the same thing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace strongroom::audit {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// The bytes of a hash, for APIs that take byte strings.
inline std::string_view AsBytes(const Hash& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

// SHA-256 of the concatenation of `parts`.
Hash Sha256(std::initializer_list<std::string_view> parts);
inline Hash Sha256(std::string_view data) { return Sha256({data}); }

// Incremental SHA-256 without allocation, for the verifier's per-line work (OpenSSL's SHA-256
// block functions directly: the EVP layer costs a provider dispatch per digest, a sixth of the
// time of a whole 1 KiB line). Final() returns the digest and starts over.
class Sha256Hasher {
 public:
  Sha256Hasher();
  void Update(std::string_view data);
  Hash Final();

 private:
  alignas(8) unsigned char ctx_[128];  // SHA256_CTX (112 bytes in OpenSSL 3)
};

// Lowercase hex.
std::string HexEncode(std::string_view bytes);
inline std::string HexEncode(const Hash& h) { return HexEncode(AsBytes(h)); }
// Exactly 64 lowercase hex digits.
std::optional<Hash> HashFromHex(std::string_view hex);

// RFC 4648 section 4 (standard alphabet, '=' padding). Decoding is strict: padding required,
// no whitespace, and the unused bits of the last character must be zero (canonical encoding).
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);
std::optional<Hash> HashFromBase64(std::string_view text);

// ASCII decimal without sign, leading zeros ("0" itself is fine) or overflow.
std::optional<uint64_t> ParseDecimalU64(std::string_view text);

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);
// The length (2-4) of the well-formed multi-byte UTF-8 sequence at the start of `text` (no
// overlong forms, surrogates or values above U+10FFFF), or 0 if there is none.
size_t Utf8SequenceLength(std::string_view text);

}  // namespace strongroom::audit
