// The Transit secrets engine (Vault's "encryption as a service") with every key inside the
// PKCS#11 token: each key version is generated in the token, persisted only as a blob wrapped by
// the Transit KEK, and unwrapped into the token (sensitive, non-extractable session objects) to
// encrypt, decrypt, HMAC and sign; a private key the token cannot wrap (ed25519 on SoftHSM2 2.6.1)
// is a non-extractable token object instead. No code path reads a key value.
// Parts: transit_keys (model), transit_crypto (formats, algorithms, verification),
// transit_store (custody, cache, token objects), transit_ops (key operations), and
// transit_backend.cc (routes, key lifecycle).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"

namespace strongroom::engines {

absl::StatusOr<std::unique_ptr<core::Backend>> MakeTransitBackend(const core::MountEntry& entry,
                                                                  core::Core* core);

}  // namespace strongroom::engines
