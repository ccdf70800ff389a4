// Issue 15 item 11: a failing random generator never yields a token, accessor, secret_id or UUID.
#define OPENSSL_SUPPRESS_DEPRECATED  // RAND_set_rand_method: the only way to make RAND_bytes fail
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <set>

#include "appliance/core/json.h"

namespace strongroom::core {
namespace {

int FailBytes(unsigned char*, int) { return 0; }
int FailStatus() { return 0; }

// Installs a generator whose every call fails (the state RAND_bytes reports with 0).
void BreakRandom() {
  static RAND_METHOD broken = {nullptr, FailBytes, nullptr, nullptr, FailBytes, FailStatus};
  ASSERT_EQ(RAND_set_rand_method(&broken), 1);
}

TEST(RandomDeathTest, FailingGeneratorAbortsInsteadOfReturningATokenOrUuid) {
  EXPECT_DEATH(
      {
        BreakRandom();
        (void)RandomBase62(24);
      },
      "random generator failed");
  EXPECT_DEATH(
      {
        BreakRandom();
        (void)NewUuid();
      },
      "random generator failed");
  EXPECT_DEATH(
      {
        BreakRandom();
        (void)RandomHex(16);
      },
      "random generator failed");
}

TEST(RandomTest, WorkingGeneratorGivesDistinctValues) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(RandomBase62(24));
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(NewUuid().size(), 36u);
  EXPECT_EQ(RandomHex(16).size(), 32u);
}

}  // namespace
}  // namespace strongroom::core
