#include "appliance/engines/registry.h"

#include "appliance/engines/kv_backend.h"

namespace strongroom::engines {

std::vector<core::EngineType> EngineTable() {
  return {
      {"kv", "kv", MakeKvBackend, NormalizeKvMount},
      {"kv-v2", "kv", MakeKvBackend, NormalizeKvMount},  // alias: kv with version 2
  };
}

}  // namespace strongroom::engines
