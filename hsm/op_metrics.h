// hsm.operation (base/metrics_catalog.h): the histogram one PKCS#11 operation of the Token is
// timed into, by operation and mechanism.
#pragma once

#include <string_view>

#include "base/metrics.h"
#include "hsm/pkcs11.h"

namespace strongroom::hsm {

// The catalog's name of `mechanism` ("CKM_AES_GCM", ...; "other" for one it does not list).
std::string_view MechanismLabel(CK_MECHANISM_TYPE mechanism);

// `operation`: one of metrics::kHsmOperations ("encrypt", "sign", ...).
metrics::Histogram& OperationHistogram(std::string_view operation, CK_MECHANISM_TYPE mechanism);
// C_GenerateRandom (mechanism "none").
metrics::Histogram& RandomHistogram();

}  // namespace strongroom::hsm
