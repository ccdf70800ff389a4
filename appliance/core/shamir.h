// Shamir secret sharing over GF(2^8) through Debian's libgfshare, with Vault's share layout:
// each share is the y-bytes followed by its x-coordinate byte.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "base/secure_bytes.h"

namespace strongroom::core {

// 1 <= threshold <= shares <= 255; threshold >= 2 when shares > 1 (Vault's rule).
absl::StatusOr<std::vector<std::vector<uint8_t>>> ShamirSplit(std::span<const uint8_t> secret,
                                                              int shares, int threshold);
// Shares of equal length with distinct x-coordinates; returns the secret.
absl::StatusOr<SecureBytes> ShamirCombine(const std::vector<std::vector<uint8_t>>& shares);

}  // namespace strongroom::core
