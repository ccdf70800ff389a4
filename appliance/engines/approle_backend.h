// The AppRole auth method (Vault's auth/approle): roles, role IDs, secret IDs (use counts, TTLs,
// CIDR binding) and login, which issues an orphan service token with the role's policies.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeAppRoleBackend(const core::MountEntry& entry,
                                                                  core::Core* core);

}  // namespace strongroom::engines
