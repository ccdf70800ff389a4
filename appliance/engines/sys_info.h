// The informational sys/ endpoints, in Vault's shapes: sys/host-info, sys/internal/counters/*,
// sys/internal/specs/openapi, sys/config/state/sanitized and sys/version-history. Part of the
// system backend (sys_backend.cc routes these paths here).
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "appliance/core/request.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

// Whether `rel_path` (below sys/) is one of the paths HandleInfo answers.
bool IsInfoPath(std::string_view rel_path);
absl::StatusOr<core::Response> HandleInfo(core::Core* core, core::Request& req);

}  // namespace strongroom::engines
