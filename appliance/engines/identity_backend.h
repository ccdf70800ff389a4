// The identity store's API at identity/ (built in, not removable): entities, entity aliases and
// lookups, Vault's paths and shapes (vault-api.md section 6.2).
#pragma once

#include <memory>

#include "appliance/core/backend.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

std::unique_ptr<core::Backend> MakeIdentityBackend(core::Core* core);

}  // namespace strongroom::engines
