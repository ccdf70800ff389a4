#include "appliance/storage/snapshot_archive.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>

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

SnapshotBuilder::SnapshotBuilder(int64_t created_unix, size_t max_bytes)
    : out_(kMagic), max_bytes_(max_bytes) {
  // Room up to the limit at once (pages are touched only as written): no copy on growth.
  out_.reserve(std::min(max_bytes, kMaxSnapshotBytes));
  PutU64(&out_, static_cast<uint64_t>(created_unix));
  PutU32(&out_, 0);  // the count, patched in by Finish
}

size_t SnapshotBuilder::bytes() const { return out_.size() + kTrailer; }

bool SnapshotBuilder::Add(std::string_view key, std::string_view value) {
  if (over_limit_) return false;
  const size_t room = max_bytes_ - std::min(max_bytes_, bytes());
  // Compared without a sum that could wrap: 8 bytes of lengths, then the key, then the value.
  if (count_ >= kMaxSnapshotEntries || key.size() > UINT32_MAX || value.size() > UINT32_MAX ||
      room < 8 || key.size() > room - 8 || value.size() > room - 8 - key.size()) {
    over_limit_ = true;
    return false;
  }
  PutU32(&out_, static_cast<uint32_t>(key.size()));
  out_.append(key);
  PutU32(&out_, static_cast<uint32_t>(value.size()));
  out_.append(value);
  ++count_;
  return true;
}

std::string SnapshotBuilder::Finish(std::string_view mac_key) && {
  for (int i = 0; i < 4; ++i) {
    out_[kHeader - 4 + static_cast<size_t>(i)] =
        static_cast<char>((count_ >> (8 * (3 - i))) & 0xff);
  }
  out_ += Hmac(mac_key, out_);
  out_ += Sha256(out_);
  return std::move(out_);
}

std::string EncodeSnapshot(const SnapshotArchive& archive, std::string_view mac_key) {
  SnapshotBuilder b(archive.created_unix, SIZE_MAX);
  for (const auto& [k, v] : archive.entries) b.Add(k, v);
  return std::move(b).Finish(mac_key);
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
