// The one translator from CK_RV to absl::Status.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "hsm/pkcs11.h"

namespace strongroom::hsm {

// "CKR_PIN_INCORRECT", ..., or "CKR_0x000000AB" for codes no standard names.
std::string_view RvName(CK_RV rv);

// OK for CKR_OK; otherwise a status whose message is "<what>: <CKR name>", with a code chosen
// by meaning (PIN/login problems: PermissionDenied; bad arguments/templates/data: InvalidArgument;
// missing objects/slots/tokens: NotFound; device/memory errors: Unavailable/Internal; ...).
absl::Status RvToStatus(CK_RV rv, std::string_view what);

}  // namespace strongroom::hsm
