#include "hsm/fork_generation.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "base/log.h"

namespace strongroom::hsm {
namespace {

std::atomic<uint64_t> g_generation{0};

// Runs in the child, which has one thread at that point.
void CountFork() { g_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

uint64_t ForkGeneration() {
  static std::once_flag registered;
  std::call_once(registered, [] {
    if (pthread_atfork(nullptr, nullptr, CountFork) != 0) {
      // Without the handler a forked child could not tell it is one: refuse to run at all
      // rather than let it use its parent's PKCS#11 state. (pthread_atfork fails only when out
      // of memory.)
      LogError("pthread_atfork failed: cannot guard PKCS#11 state against fork()");
      std::abort();
    }
  });
  return g_generation.load(std::memory_order_relaxed);
}

}  // namespace strongroom::hsm
