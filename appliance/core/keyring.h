// The barrier keyring: AES-256-GCM data keys, one per term. It is the only key material that
// lives in broker memory (SecureBytes: locked, excluded from dumps, zeroed). It is persisted
// only as one blob wrapped by the KEK inside the token (see Seal in core.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "base/secure_bytes.h"

namespace strongroom::core {

class Keyring {
 public:
  static constexpr size_t kKeySize = 32;

  struct Term {
    uint32_t term = 0;
    int64_t install_unix_ns = 0;
    SecureBytes key;
  };

  // A keyring with term 1 and a fresh random key.
  static absl::StatusOr<Keyring> Generate(int64_t now_unix_ns);
  // Serialized form: "SRKR" | version 1 | active term | count | {term, install ns, key}*.
  static absl::StatusOr<Keyring> Parse(std::span<const uint8_t> bytes);
  SecureBytes Serialize() const;

  // A copy of this keyring with a new active term (term = highest + 1) and a fresh random key.
  absl::StatusOr<Keyring> Rotated(int64_t now_unix_ns) const;
  Keyring Clone() const;

  const Term& Active() const;
  const Term* Find(uint32_t term) const;
  size_t size() const { return terms_.size(); }

 private:
  uint32_t active_ = 0;
  std::vector<Term> terms_;
};

}  // namespace strongroom::core
