#include "appliance/storage/snapshot_archive.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace strongroom::storage {
namespace {

constexpr std::string_view kMagic = "SRSNAP01";
constexpr size_t kHeader = 8 + 8 + 4;
constexpr size_t kTrailer = 32 + 32;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetBe(std::string_view s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

absl::Status Refused(std::string_view why) {
  return absl::InvalidArgumentError(std::string("invalid snapshot: ").append(why));
}

}  // namespace

std::string SnapshotMacKey(std::span<const uint8_t> serialized_keyring) {
  return Hmac(std::string_view(reinterpret_cast<const char*>(serialized_keyring.data()),
                               serialized_keyring.size()),
              "strongroom snapshot mac v1");
}

std::string EncodeSnapshot(const SnapshotArchive& archive, std::string_view mac_key) {
  std::string out(kMagic);
  PutU64(&out, static_cast<uint64_t>(archive.created_unix));
  PutU32(&out, static_cast<uint32_t>(archive.entries.size()));
  for (const auto& [k, v] : archive.entries) {
    PutU32(&out, static_cast<uint32_t>(k.size()));
    out += k;
    PutU32(&out, static_cast<uint32_t>(v.size()));
    out += v;
  }
  out += Hmac(mac_key, out);
  out += Sha256(out);
  return out;
}

absl::StatusOr<SnapshotArchive> DecodeSnapshot(std::string_view bytes) {
  if (bytes.size() > kMaxSnapshotBytes) {
    return Refused(absl::StrCat(bytes.size(), " bytes is over the limit of ", kMaxSnapshotBytes));
  }
  if (bytes.size() < kHeader + kTrailer || bytes.substr(0, kMagic.size()) != kMagic) {
    return Refused("not a strongroom snapshot");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - 32);
  const std::string digest = Sha256(body);
  if (CRYPTO_memcmp(digest.data(), bytes.data() + body.size(), 32) != 0) {
    return Refused("checksum mismatch (truncated or damaged)");
  }
  SnapshotArchive a;
  a.created_unix = static_cast<int64_t>(GetBe(bytes, 8, 8));
  const uint64_t count = GetBe(bytes, 16, 4);
  if (count > kMaxSnapshotEntries) return Refused("too many entries");
  const size_t end = bytes.size() - kTrailer;
  size_t at = kHeader;
  // Not trusted yet (the MAC is checked later): reserve no more than the bytes can hold.
  a.entries.reserve(std::min<size_t>(static_cast<size_t>(count), (end - at) / 8));
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view field[2];
    for (auto& f : field) {
      if (end - at < 4) return Refused("entry runs past the end");
      const uint64_t len = GetBe(bytes, at, 4);
      at += 4;
      if (end - at < len) return Refused("entry runs past the end");
      f = bytes.substr(at, len);
      at += len;
    }
    if (field[0].empty()) return Refused("empty key");
    if (!a.entries.empty() && !(a.entries.back().first < field[0])) {
      return Refused("keys out of order");
    }
    a.entries.emplace_back(std::string(field[0]), std::string(field[1]));
  }
  if (at != end) return Refused("trailing bytes after the last entry");
  return a;
}

absl::Status VerifySnapshotMac(std::string_view bytes, std::string_view mac_key) {
  if (bytes.size() < kHeader + kTrailer) return Refused("not a strongroom snapshot");
  const size_t mac_at = bytes.size() - kTrailer;
  const std::string mac = Hmac(mac_key, bytes.substr(0, mac_at));
  if (CRYPTO_memcmp(mac.data(), bytes.data() + mac_at, 32) != 0) {
    return Refused("its MAC does not verify under the keyring it carries (altered)");
  }
  return absl::OkStatus();
}

}  // namespace strongroom::storage
