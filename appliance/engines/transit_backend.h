// The Transit secrets engine (Vault's "encryption as a service") with every key inside the
// PKCS#11 token: each key version is generated in the token, persisted only as a blob wrapped by
// the Transit KEK, and unwrapped into the token (sensitive, non-extractable session objects) to
// encrypt, decrypt and HMAC. No code path reads a key value.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeTransitBackend(const core::MountEntry& entry,
                                                                  core::Core* core);

}  // namespace strongroom::engines
