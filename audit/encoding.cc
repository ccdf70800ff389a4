// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but kept, and they are
// the same assembly (SHA-NI where the CPU has it) without EVP's per-digest dispatch and
// allocation; see Sha256Hasher.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/encoding.h"

#include <openssl/sha.h>

#include <cstdlib>
#include <new>

namespace strongroom::audit {

namespace {

static_assert(sizeof(SHA256_CTX) <= 128 && alignof(SHA256_CTX) <= 8);

SHA256_CTX* Ctx(unsigned char* storage) {
  return std::launder(reinterpret_cast<SHA256_CTX*>(storage));
}

// SHA-256 over memory cannot fail; a wrong hash must never be returned, so there is no error
// path to get wrong.
void Must(int rc) {
  if (rc != 1) std::abort();
}

}  // namespace

Sha256Hasher::Sha256Hasher() {
  new (ctx_) SHA256_CTX;  // a C struct: trivially destructible, copied as bytes
  Must(SHA256_Init(Ctx(ctx_)));
}

void Sha256Hasher::Update(std::string_view data) {
  Must(SHA256_Update(Ctx(ctx_), data.data(), data.size()));
}

Hash Sha256Hasher::Final() {
  Hash out{};
  Must(SHA256_Final(out.data(), Ctx(ctx_)));
  Must(SHA256_Init(Ctx(ctx_)));
  return out;
}

Hash Sha256(std::initializer_list<std::string_view> parts) {
  Sha256Hasher h;
  for (std::string_view part : parts) h.Update(part);
  return h.Final();
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

namespace {

// Lowercase hex digit values, 0xff for every other byte: a table, as the digits of a hash are
// random and branches on them mispredict (HashFromHex runs twice for every line verified).
struct HexTable {
  uint8_t v[256];
  constexpr HexTable() : v() {
    for (int i = 0; i < 256; ++i) v[i] = 0xff;
    for (int i = 0; i < 10; ++i) v['0' + i] = static_cast<uint8_t>(i);
    for (int i = 0; i < 6; ++i) v['a' + i] = static_cast<uint8_t>(10 + i);
  }
};
constexpr HexTable kHex;

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 2 * kHashSize) return std::nullopt;
  Hash out{};
  uint8_t bad = 0;
  for (size_t i = 0; i < kHashSize; ++i) {
    const uint8_t hi = kHex.v[static_cast<unsigned char>(hex[2 * i])];
    const uint8_t lo = kHex.v[static_cast<unsigned char>(hex[2 * i + 1])];
    bad |= static_cast<uint8_t>((hi | lo) & 0xf0);
    out[i] = static_cast<uint8_t>((hi << 4) | (lo & 0x0f));
  }
  if (bad != 0) return std::nullopt;
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = at(i) << 16;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    const uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<size_t>(k)];
      if (c == '=') {
        // Padding only at the end of the last quantum, at most two characters.
        if (!last || k < 2) return std::nullopt;
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = Base64Value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const uint32_t bits = (static_cast<uint32_t>(v[0]) << 18) |
                          (static_cast<uint32_t>(v[1]) << 12) | (static_cast<uint32_t>(v[2]) << 6) |
                          static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>((bits >> 16) & 0xff));
    if (pad == 2) {
      if ((bits & 0xffff) != 0) return std::nullopt;  // non-canonical trailing bits
      break;
    }
    out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (pad == 1) {
      if ((bits & 0xff) != 0) return std::nullopt;
      break;
    }
    out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

std::optional<Hash> HashFromBase64(std::string_view text) {
  std::optional<std::string> bytes = Base64Decode(text);
  if (!bytes || bytes->size() != kHashSize) return std::nullopt;
  Hash out{};
  for (size_t i = 0; i < kHashSize; ++i) out[i] = static_cast<uint8_t>((*bytes)[i]);
  return out;
}

std::optional<uint64_t> ParseDecimalU64(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

size_t Utf8SequenceLength(std::string_view text) {
  if (text.empty()) return 0;
  const auto c = static_cast<unsigned char>(text[0]);
  size_t n = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 1, cp = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 2, cp = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 3, cp = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (text.size() <= n) return 0;
  for (size_t k = 1; k <= n; ++k) {
    const auto d = static_cast<unsigned char>(text[k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n + 1;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace strongroom::audit
