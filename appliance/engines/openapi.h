// sys/internal/specs/openapi: an OpenAPI 3.0.2 document generated from the route tables of the
// mounted backends (core/route.h), one set of paths per mount as Vault generates it. The core
// refuses every request no route matches, so the document lists exactly the paths the router
// accepts.
#pragma once

#include <string>
#include <vector>

#include "appliance/core/core.h"
#include "appliance/core/json.h"

namespace strongroom::engines {

struct OpenApiOptions {
  std::string version;  // info.version: the server's version
  // Vault's generic_mount_paths: each mount path becomes a parameter "{<type>_mount_path}".
  bool generic_mount_paths = false;
};

core::json::object OpenApiDocument(const std::vector<core::Core::MountBackend>& mounts,
                                   const OpenApiOptions& options);

}  // namespace strongroom::engines
