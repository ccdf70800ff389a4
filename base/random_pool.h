// Random bytes for values made often and in small pieces: AES-GCM nonces of the barrier and of
// Transit, request ids. One RAND_bytes call costs about the same for 1.5 KiB as for 12 bytes
// (2-6 us of CPU on the 2-vCPU hosts we measure on: a getpid() system call for OpenSSL's fork
// check and the DRBG's set-up, several times more when threads contend for the DRBG), so each
// thread draws kRandomPoolBytes at a time and hands every byte out once, then wipes it. Every
// value is still fresh output of OpenSSL's DRBG, used once.
//
// A forked child drops what its parent drew (ForkGeneration), so the two never hand out the
// same bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace strongroom {

inline constexpr size_t kRandomPoolBytes = 1536;
inline constexpr size_t kMaxPooledDraw = 64;

// Fills out[0, n) from the calling thread's pool, n <= kMaxPooledDraw (InvalidArgument past it).
// Internal when the random generator fails; then nothing is handed out and `out` is untouched.
absl::Status PooledRandomBytes(uint8_t* out, size_t n);

}  // namespace strongroom
