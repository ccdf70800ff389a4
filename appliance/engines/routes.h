// The route tables of the engines and auth methods (core/route.h), one function each: what each
// backend's Routes() returns. The system backend's table is in sys_routes.cc.
#pragma once

#include <span>

#include "appliance/core/route.h"

namespace strongroom::engines {

std::span<const core::Route> TokenRoutes();
std::span<const core::Route> IdentityRoutes();
std::span<const core::Route> KvV1Routes();
std::span<const core::Route> KvV2Routes();
std::span<const core::Route> TransitRoutes();
std::span<const core::Route> CubbyholeRoutes();
std::span<const core::Route> AppRoleRoutes();
std::span<const core::Route> KubernetesRoutes();
std::span<const core::Route> UserpassRoutes();

}  // namespace strongroom::engines
