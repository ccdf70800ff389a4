// The userpass auth method (Vault's auth/userpass): users with Argon2id password hashes
// (password_hash.h) and the token_* parameters of every auth method's role (token_params.h);
// login/<username> issues an orphan service token with the user's policies.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeUserpassBackend(const core::MountEntry& entry,
                                                                   core::Core* core);

}  // namespace strongroom::engines
