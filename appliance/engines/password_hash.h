// Password hashes for the userpass auth method: Argon2id (RFC 9106) from Botan 2, OpenSSL 3.0
// having none. A hash is stored with its parameters and salt, so the defaults can change later
// and old hashes still verify.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"

namespace strongroom::engines {

// Longer passwords are refused before any hashing (Argon2 itself would take any length).
inline constexpr size_t kMaxPasswordBytes = 1024;

struct Argon2Params {
  // RFC 9106's second recommended option scaled to an appliance's login rate (OWASP's Argon2id
  // minimum): 19 MiB, 2 passes, 1 lane.
  uint32_t memory_kib = 19 * 1024;
  uint32_t iterations = 2;
  uint32_t parallelism = 1;
};

// {"algorithm":"argon2id","m":...,"t":...,"p":...,"salt":<base64>,"hash":<base64>}.
absl::StatusOr<core::json::object> HashPassword(std::string_view password,
                                                const Argon2Params& params = {});
// Whether `password` matches `stored` (compared in constant time). InvalidArgument when the
// password is too long; DataLoss when `stored` is malformed or its parameters are out of bounds.
absl::StatusOr<bool> VerifyPassword(std::string_view password, const core::json::object& stored);
// The work of one VerifyPassword with the default parameters, for a user that does not exist:
// a login takes as long whether the name is known or not.
void VerifyAgainstDummy(std::string_view password);

// Argon2id computations so far in this process, and those made with the default parameters:
// the tests check that a login for an unknown name makes the same computation as a wrong
// password (timing it would be a timed assertion).
struct Argon2Count {
  uint64_t all = 0;
  uint64_t with_defaults = 0;
};
Argon2Count Argon2Evaluations();

}  // namespace strongroom::engines
