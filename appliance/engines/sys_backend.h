// The system backend mounted at sys/: mount management, keyring rotation and status, seal.
// (Unauthenticated, non-logical sys endpoints — init, seal-status, unseal, health, leader —
// are answered by the core before authentication.)
#pragma once

#include <memory>
#include <span>

#include "appliance/core/backend.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

std::unique_ptr<core::Backend> MakeSystemBackend(core::Core* core);
// Every sys/ path, with the operations it takes (sys_routes.cc).
std::span<const core::Route> SystemRoutes();

}  // namespace strongroom::engines
