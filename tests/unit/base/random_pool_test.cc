// PooledRandomBytes: every byte of a thread's pool is handed out once, never to two threads,
// never to both sides of a fork; draws past the bound are refused.
#include "base/random_pool.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace strongroom {
namespace {

std::string Draw(size_t n) {
  std::string out(n, '\0');
  EXPECT_TRUE(PooledRandomBytes(reinterpret_cast<uint8_t*>(out.data()), n).ok());
  return out;
}

TEST(RandomPoolTest, DrawsOfEverySizeAcrossThreadsAreDistinct) {
  std::mutex mu;
  std::set<std::string> seen;
  size_t made = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> mine;
      // Sizes that do not divide the pool, so draws straddle the point where a pool runs out.
      for (size_t i = 0; i < 3 * kRandomPoolBytes / 8; ++i) mine.push_back(Draw(8 + (i + t) % 9));
      std::lock_guard<std::mutex> lock(mu);
      made += mine.size();
      seen.insert(mine.begin(), mine.end());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(seen.size(), made) << "a draw was handed out twice";
}

TEST(RandomPoolTest, AForkedChildDoesNotHandOutItsParentsBytes) {
  Draw(12);  // this thread now holds a partly used pool
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::array<uint8_t, 32> b{};
    const bool ok = PooledRandomBytes(b.data(), b.size()).ok() &&
                    write(fds[1], b.data(), b.size()) == static_cast<ssize_t>(b.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string child(32, '\0');
  ASSERT_EQ(read(fds[0], child.data(), child.size()), 32);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(Draw(32), child) << "parent and child handed out the same bytes";
}

TEST(RandomPoolTest, ADrawPastTheBoundIsRefusedAndTouchesNothing) {
  std::array<uint8_t, kMaxPooledDraw + 1> b{};
  EXPECT_EQ(PooledRandomBytes(b.data(), b.size()).code(), absl::StatusCode::kInvalidArgument);
  for (uint8_t x : b) ASSERT_EQ(x, 0);
  EXPECT_TRUE(PooledRandomBytes(b.data(), kMaxPooledDraw).ok());
}

}  // namespace
}  // namespace strongroom
