#include "appliance/core/keyring.h"

#include <openssl/rand.h>

#include <cstring>

#include "absl/status/status.h"

namespace strongroom::core {
namespace {

constexpr uint8_t kMagic[4] = {'S', 'R', 'K', 'R'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 4 + 1 + 4 + 4;
constexpr size_t kPerTerm = 4 + 8 + Keyring::kKeySize;
constexpr uint32_t kMaxTerms = 100000;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

absl::StatusOr<SecureBytes> RandomKey() {
  SecureBytes key(Keyring::kKeySize);
  if (RAND_priv_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return absl::InternalError("random generator failed");
  }
  return key;
}

}  // namespace

absl::StatusOr<Keyring> Keyring::Generate(int64_t now_unix_ns) {
  auto key = RandomKey();
  if (!key.ok()) return key.status();
  Keyring k;
  k.active_ = 1;
  k.terms_.push_back(Term{1, now_unix_ns, std::move(*key)});
  return k;
}

absl::StatusOr<Keyring> Keyring::Parse(std::span<const uint8_t> b) {
  if (b.size() < kHeader || std::memcmp(b.data(), kMagic, 4) != 0 || b[4] != kVersion) {
    return absl::DataLossError("keyring blob has an unknown format");
  }
  Keyring k;
  k.active_ = GetU32(b.data() + 5);
  const uint32_t count = GetU32(b.data() + 9);
  if (count == 0 || count > kMaxTerms || b.size() != kHeader + size_t{count} * kPerTerm) {
    return absl::DataLossError("keyring blob has a bad length");
  }
  const uint8_t* p = b.data() + kHeader;
  for (uint32_t i = 0; i < count; ++i, p += kPerTerm) {
    Term t;
    t.term = GetU32(p);
    t.install_unix_ns = static_cast<int64_t>(GetU64(p + 4));
    t.key = SecureBytes(p + 12, kKeySize);
    if (k.Find(t.term) != nullptr) return absl::DataLossError("keyring repeats a term");
    k.terms_.push_back(std::move(t));
  }
  if (k.Find(k.active_) == nullptr) return absl::DataLossError("keyring active term missing");
  return k;
}

SecureBytes Keyring::Serialize() const {
  SecureBytes out(kHeader + terms_.size() * kPerTerm);
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 4);
  p[4] = kVersion;
  PutU32(p + 5, active_);
  PutU32(p + 9, static_cast<uint32_t>(terms_.size()));
  p += kHeader;
  for (const auto& t : terms_) {
    PutU32(p, t.term);
    PutU64(p + 4, static_cast<uint64_t>(t.install_unix_ns));
    std::memcpy(p + 12, t.key.data(), kKeySize);
    p += kPerTerm;
  }
  return out;
}

Keyring Keyring::Clone() const {
  Keyring k;
  k.active_ = active_;
  for (const auto& t : terms_) k.terms_.push_back(Term{t.term, t.install_unix_ns, t.key.Clone()});
  return k;
}

absl::StatusOr<Keyring> Keyring::Rotated(int64_t now_unix_ns) const {
  auto key = RandomKey();
  if (!key.ok()) return key.status();
  Keyring k = Clone();
  uint32_t highest = 0;
  for (const auto& t : terms_) highest = std::max(highest, t.term);
  k.active_ = highest + 1;
  k.terms_.push_back(Term{k.active_, now_unix_ns, std::move(*key)});
  return k;
}

const Keyring::Term& Keyring::Active() const { return *Find(active_); }

const Keyring::Term* Keyring::Find(uint32_t term) const {
  for (const auto& t : terms_) {
    if (t.term == term) return &t;
  }
  return nullptr;
}

}  // namespace strongroom::core
