// The PKCS#11 C headers (from Debian's libp11-kit-dev: p11-kit ships the OASIS pkcs11.h).
#pragma once

#include <p11-kit/pkcs11.h>
