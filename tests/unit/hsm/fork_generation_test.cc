// hsm::ForkGeneration: which copy of the process this is, without a system call.
#include "hsm/fork_generation.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

namespace strongroom::hsm {
namespace {

// Forks; the child exits with ForkGeneration() - `base` (0..250), or 255 on a failure of its own.
int ChildGenerationDelta(uint64_t base, bool grandchild) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (grandchild) {
      const int delta = ChildGenerationDelta(base, false);
      _exit(delta < 0 ? 255 : delta);
    }
    const uint64_t g = ForkGeneration();
    _exit(g >= base && g - base <= 250 ? static_cast<int>(g - base) : 255);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(HsmForkGenerationTest, CountsForksFromTheAskingProcess) {
  const uint64_t base = ForkGeneration();
  EXPECT_EQ(ForkGeneration(), base);
  EXPECT_EQ(ChildGenerationDelta(base, false), 1);
  EXPECT_EQ(ChildGenerationDelta(base, true), 2);
  EXPECT_EQ(ForkGeneration(), base) << "a child's fork changed the parent's count";
}

}  // namespace
}  // namespace strongroom::hsm
