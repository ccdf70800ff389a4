// Kubernetes auth method (mounted at auth/kubernetes/ by default): service-account JWTs checked
// through the API server's TokenReview over TLS, as Vault does, and/or locally against pem_keys.
// With pem_keys and no kubernetes_host every check is local (signature, expiry, issuer,
// audience), for clusters where the appliance may not call TokenReview.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeKubernetesBackend(const core::MountEntry& entry,
                                                                     core::Core* core);

}  // namespace strongroom::engines
