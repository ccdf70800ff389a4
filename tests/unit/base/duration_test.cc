// The one duration parser (base/duration.h): Go's time.ParseDuration and Vault's
// ParseDurationSecond, which the API, policies, the agent, the injector and the CLI all use.
#include "base/duration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace strongroom {
namespace {

using ::testing::HasSubstr;

TEST(DurationTest, VaultForms) {
  struct Case {
    const char* text;
    int64_t seconds;
  };
  for (const Case& c :
       {Case{"", 0}, Case{"0", 0}, Case{"90", 90}, Case{"90s", 90}, Case{"1h30m", 5400},
        Case{"768h", 2764800}, Case{"7d", 604800}, Case{"0d", 0}, Case{"1.5s", 1},
        Case{"1.5h", 5400}, Case{"+5m", 300}, Case{"2562047h47m16s", kMaxDurationSeconds},
        Case{"106751d", int64_t{106751} * 86400}}) {
    absl::StatusOr<int64_t> s = ParseDurationSeconds(c.text);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.status();
    EXPECT_EQ(*s, c.seconds) << c.text;
  }
  EXPECT_EQ(*ParseVaultDurationNanos("1.5s"), 1'500'000'000);
  EXPECT_EQ(*ParseVaultDurationNanos("250ms"), 250'000'000);
}

TEST(DurationTest, RefusalsSayWhy) {
  for (const char* bad :
       {"soon", " 90", "1m ", "1x", "d", "1.5d", "1 h", "--1s", "inf", "1e3s", "h1"}) {
    absl::StatusOr<int64_t> s = ParseDurationSeconds(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().message(), absl::StrCat("invalid duration \"", bad, "\""));
  }
  for (const char* negative : {"-1", "-1s", "-2d"}) {
    EXPECT_EQ(ParseDurationSeconds(negative).status().message(), "duration must not be negative")
        << negative;
  }
  for (const char* huge : {"2562048h", "106752d", "9223372036854775808", "9223372036s0ns1h",
                           "9223372036854775808ns9223372036854775808ns5s"}) {
    EXPECT_THAT(ParseDurationSeconds(huge).status().message(), HasSubstr("out of range")) << huge;
  }
}

TEST(DurationTest, GoParseDuration) {
  EXPECT_EQ(*ParseGoDurationNanos("0"), 0);
  EXPECT_EQ(*ParseGoDurationNanos("1h2m3.5s"), 3723'500'000'000);
  EXPECT_EQ(*ParseGoDurationNanos("-1.5h"), -5400'000'000'000);
  EXPECT_EQ(*ParseGoDurationNanos("3\xC2\xB5s"), 3000);                       // µs
  EXPECT_TRUE(absl::IsInvalidArgument(ParseGoDurationNanos("90").status()));  // no unit
  EXPECT_TRUE(absl::IsInvalidArgument(ParseGoDurationNanos("7d").status()));  // Vault's, not Go's
  EXPECT_TRUE(absl::IsOutOfRange(ParseGoDurationNanos("2562048h").status()));
  EXPECT_EQ(ParseGoInt("-12"), -12);
  EXPECT_EQ(ParseGoInt("12a"), std::nullopt);
}

}  // namespace
}  // namespace strongroom
