// The cubbyhole at cubbyhole/ (built in, not removable): each service token's private key/value
// store, seen only through that token and destroyed with it (Vault's cubbyhole engine). The data
// lives beside the token in the token store (core/token_store.h), so its revocation deletes both
// in one write. A response-wrapping token keeps its wrapped response here at "response".
#pragma once

#include <memory>

#include "appliance/core/backend.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines {

std::unique_ptr<core::Backend> MakeCubbyholeBackend(core::Core* core);

}  // namespace strongroom::engines
