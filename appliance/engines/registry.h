// The engine table: every mountable type and its factory. Adding an engine adds one row here.
#pragma once

#include <vector>

#include "appliance/core/backend.h"

namespace strongroom::engines {

std::vector<core::EngineType> EngineTable();

}  // namespace strongroom::engines
