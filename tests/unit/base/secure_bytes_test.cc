#include "base/secure_bytes.h"

#include <gtest/gtest.h>

#include <cstring>

namespace strongroom {
namespace {

TEST(SecureBytes, ZeroFilledAndSized) {
  SecureBytes b(48);
  ASSERT_EQ(b.size(), 48u);
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b.data()[i], 0);
}

TEST(SecureBytes, CopiesAndComparesInConstantTime) {
  const uint8_t src[] = {1, 2, 3, 4};
  SecureBytes b(src, sizeof src);
  EXPECT_TRUE(b.Equals(src));
  const uint8_t other[] = {1, 2, 3, 5};
  EXPECT_FALSE(b.Equals(other));
  EXPECT_FALSE(b.Equals(std::span<const uint8_t>(src, 3)));
}

TEST(SecureBytes, MoveLeavesSourceEmptyAndWipeReleases) {
  SecureBytes a(16);
  a.data()[0] = 7;
  SecureBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.data()[0], 7);
  b.Wipe();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
}

}  // namespace
}  // namespace strongroom
