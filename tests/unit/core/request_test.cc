// Where a token or accessor sits in a path: the token-store path forms Vault removed
// (issue 23 item 7). The audit record hashes that segment and the broker log hides it.
#include "appliance/core/request.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace strongroom::core {
namespace {

constexpr size_t kNone = std::string_view::npos;

TEST(CredentialInPathTest, FindsEveryRemovedFormInAnyCase) {
  for (std::string form : {"lookup", "renew", "revoke", "revoke-orphan", "lookup-accessor",
                           "renew-accessor", "revoke-accessor"}) {
    const std::string prefix = "auth/token/" + form + "/";
    EXPECT_EQ(CredentialOffsetInPath(prefix + "hvs.abc"), prefix.size()) << form;
    EXPECT_EQ(CredentialOffsetInPath(prefix + "a/b"), prefix.size()) << form;
    std::string upper = prefix;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(CredentialOffsetInPath(upper + "hvs.abc"), prefix.size()) << form;
    EXPECT_EQ(LoggablePath(prefix + "hvs.abc"), prefix + "***");
    EXPECT_EQ(CredentialOffsetInPath(prefix), kNone) << "nothing after the form: " << form;
  }
}

TEST(CredentialInPathTest, LeavesEveryOtherPathAlone) {
  for (const char* path :
       {"auth/token/lookup", "auth/token/lookup-self", "auth/token/lookup-selfish/x",
        "auth/token/roles/lookup", "auth/token/create/ci", "auth/approle/lookup/x",
        "secret/data/auth/token/lookup/x", "auth/token/lookupx/y", ""}) {
    EXPECT_EQ(CredentialOffsetInPath(path), kNone) << path;
    EXPECT_EQ(LoggablePath(path), path);
  }
}

}  // namespace
}  // namespace strongroom::core
