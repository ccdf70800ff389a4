// ReadIndex: a caller is confirmed only by a round that began after it arrived, and callers that
// arrive while a round runs share the next one.
#include "appliance/broker/read_index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace strongroom::broker {
namespace {

// Waits (a liveness deadline, not a timing assertion) until `ok` holds.
template <typename F>
bool Within10s(F ok) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(ReadIndexTest, EachCallAloneRunsARoundOfItsOwn) {
  std::atomic<uint64_t> n{0};
  ReadIndex ri([&]() -> absl::StatusOr<uint64_t> { return ++n; });
  EXPECT_EQ(*ri.Confirm(), 1u);
  EXPECT_EQ(*ri.Confirm(), 2u);
  EXPECT_EQ(ri.rounds(), 2u);
}

TEST(ReadIndexTest, ARoundUnderWayWhenACallerArrivesDoesNotConfirmIt) {
  std::atomic<uint64_t> n{0};
  std::atomic<bool> release{false};
  ReadIndex ri([&]() -> absl::StatusOr<uint64_t> {
    const uint64_t round = ++n;
    // Round 1 ends only once the callers below arrived (and wait).
    while (round == 1 && !release.load()) std::this_thread::yield();
    return round;
  });
  absl::StatusOr<uint64_t> first;
  std::thread t1([&] { first = ri.Confirm(); });
  ASSERT_TRUE(Within10s([&] { return n.load() == 1; }));  // round 1 is under way
  std::vector<absl::StatusOr<uint64_t>> later(8);
  std::vector<std::thread> callers;
  for (auto& r : later) callers.emplace_back([&ri, &r] { r = ri.Confirm(); });
  ASSERT_TRUE(Within10s([&] { return ri.waiting() == 8; }));
  release.store(true);
  t1.join();
  for (auto& t : callers) t.join();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 1u);
  for (const auto& r : later) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, 2u);  // not round 1, which began before they arrived; all share round 2
  }
  EXPECT_EQ(ri.rounds(), 2u);
}

TEST(ReadIndexTest, AFailedRoundFailsItsCallersAndTheNextCallTriesAgain) {
  std::atomic<int> n{0};
  ReadIndex ri([&]() -> absl::StatusOr<uint64_t> {
    if (++n == 1) return absl::FailedPreconditionError("not the leader");
    return uint64_t{7};
  });
  auto failed = ri.Confirm();
  EXPECT_TRUE(absl::IsFailedPrecondition(failed.status())) << failed.status();
  auto ok = ri.Confirm();
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, 7u);
}

}  // namespace
}  // namespace strongroom::broker
