#include "appliance/engines/registry.h"

#include "appliance/engines/approle_backend.h"
#include "appliance/engines/kubernetes_backend.h"
#include "appliance/engines/kv_backend.h"
#include "appliance/engines/transit_backend.h"
#include "appliance/engines/userpass_backend.h"

namespace strongroom::engines {

std::vector<core::EngineType> EngineTable() {
  const auto kv = [](const core::MountEntry& e, core::Core*) { return MakeKvBackend(e); };
  return {
      {"kv", "kv", kv, NormalizeKvMount},
      {"kv-v2", "kv", kv, NormalizeKvMount},  // alias: kv with version 2
      {"transit", "transit", MakeTransitBackend, nullptr},
      {"approle", "auth_approle", MakeAppRoleBackend, nullptr, /*auth=*/true},
      {"kubernetes", "auth_kubernetes", MakeKubernetesBackend, nullptr, /*auth=*/true},
      {"userpass", "auth_userpass", MakeUserpassBackend, nullptr, /*auth=*/true},
  };
}

}  // namespace strongroom::engines
