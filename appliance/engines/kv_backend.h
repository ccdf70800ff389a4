// The KV secrets engine, version 2 (versioned) and version 1 (plain), as Vault's.
#pragma once

#include <memory>

#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeKvBackend(const core::MountEntry& entry);
// "kv-v2" -> kv with options.version = "2"; kv without a version is version 1 (Vault's rule).
void NormalizeKvMount(core::MountEntry& entry);

}  // namespace strongroom::engines
