// The token store's API at auth/token/ (built in, not removable), as Vault's.
#pragma once

#include <memory>

#include "appliance/core/backend.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

std::unique_ptr<core::Backend> MakeTokenBackend(core::Core* core);

}  // namespace strongroom::engines
