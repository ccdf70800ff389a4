// Sanitizer builds: LeakSanitizer checks at exit by stopping the world with clone and ptrace,
// which the seccomp filters forbid. LeakCheckBeforeFilter runs that check early instead (LSan
// then skips the exit-time one); in other builds it does nothing.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SR_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SR_LSAN 1
#endif
#endif

#ifdef SR_LSAN
#include <sanitizer/lsan_interface.h>
#endif

namespace strongroom::sandbox {

inline void LeakCheckBeforeFilter() {
#ifdef SR_LSAN
  __lsan_do_leak_check();
#endif
}

}  // namespace strongroom::sandbox
