// Smaller findings of issue 15, item 15: (a) audit files are opened without following symlinks
// and refused unless they are regular files with a mode no wider than 0640, before anything is
// changed; (d) a KV integer field's error does not echo the value; (f) a kv mount's version is
// never half-tuned. Vault API sections: sys/audit/:path (file device, file_path, mode),
// KV v2 data read (?version=), sys/mounts/:path/tune (options.version).
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

class SmallTest : public AdversarialTest {
 protected:
  HttpResponse EnableAudit(const std::string& name, const std::string& file,
                           const std::string& mode = "") {
    json options = {{"file_path", file}};
    if (!mode.empty()) options["mode"] = mode;
    return d_.Root("PUT", "/v1/sys/audit/" + name, {{"type", "file"}, {"options", options}});
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
    return st.st_mode & 07777;
  }
  static bool Exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }
  static void MakeFile(const std::string& path, mode_t mode) {
    std::ofstream(path).flush();
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }
};

// (a) A symlink as file_path is refused, whether its target exists or not, and nothing is
// created or changed through it.
TEST_F(SmallTest, AuditFileSymlinkIsRefused) {
  const std::string target = d_.dir() + "/target.log";
  const std::string link = d_.dir() + "/link.log";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto r = EnableAudit("viasymlink", link);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_FALSE(Exists(target)) << "the daemon created the symlink's target";

  MakeFile(target, 0600);
  auto r2 = EnableAudit("viasymlink2", link);
  EXPECT_EQ(r2.status, 400) << r2.body;
  auto list = d_.Root("GET", "/v1/sys/audit");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_THAT(list.body, Not(HasSubstr("viasymlink")));
}

// (a) An existing file readable or writable by others is refused and left as it was: the mode
// is checked before any fchmod, so the daemon never "fixes" a file others already hold open.
TEST_F(SmallTest, AuditFileWithWideModeIsRefusedUnchanged) {
  for (mode_t wide : {mode_t{0666}, mode_t{0644}, mode_t{0660}, mode_t{0700}, mode_t{04600}}) {
    const std::string path = d_.dir() + "/wide-" + std::to_string(wide) + ".log";
    MakeFile(path, wide);
    auto r = EnableAudit("wide" + std::to_string(wide), path);
    EXPECT_EQ(r.status, 400) << std::oct << wide << ": " << r.body;
    EXPECT_EQ(ModeOf(path), wide) << "the daemon changed the mode of a refused file";
  }
  // Not a regular file.
  auto dev = EnableAudit("devnull", "/dev/null");
  EXPECT_EQ(dev.status, 400) << dev.body;
  // A mode option wider than 0640 is refused too.
  auto opt = EnableAudit("optwide", d_.dir() + "/optwide.log", "0644");
  EXPECT_EQ(opt.status, 400) << opt.body;
  EXPECT_FALSE(Exists(d_.dir() + "/optwide.log"));
  // 0600 and 0640 are fine; a new file gets the configured mode.
  const std::string ok640 = d_.dir() + "/ok640.log";
  MakeFile(ok640, 0640);
  auto ok = EnableAudit("ok640", ok640, "0640");
  EXPECT_EQ(ok.status, 204) << ok.body;
  EXPECT_EQ(ModeOf(ok640), mode_t{0640});
  auto fresh = EnableAudit("fresh", d_.dir() + "/fresh.log");
  EXPECT_EQ(fresh.status, 204) << fresh.body;
  EXPECT_EQ(ModeOf(d_.dir() + "/fresh.log"), mode_t{0600});
}

// (d) A bad integer parameter names the field, never the value (which may be a secret pasted
// in the wrong place and would otherwise reach the client, the logs and the audit trail).
TEST_F(SmallTest, KvIntFieldErrorDoesNotEchoTheValue) {
  ASSERT_EQ(d_.Root("POST", "/v1/secret/data/k", {{"data", {{"a", "b"}}}}).status, 200);
  const std::string secret = "s3cr3t-AKIAIOSFODNN7EXAMPLE";
  auto r = d_.Root("GET", "/v1/secret/data/k?version=" + secret);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("version"));
  EXPECT_THAT(r.body, Not(HasSubstr(secret)));
  auto sub = d_.Root("GET", "/v1/secret/subkeys/k?depth=" + secret);
  EXPECT_EQ(sub.status, 400) << sub.body;
  EXPECT_THAT(sub.body, Not(HasSubstr(secret)));
}

// (f) kv version 1 -> 2 by tune: refused as a whole (no in-place upgrade here), and nothing of
// the request is applied; 2 -> 1 is refused as Vault refuses it; an unknown version too.
TEST_F(SmallTest, KvVersionTuneIsAllOrNothing) {
  ASSERT_EQ(
      d_.Root("POST", "/v1/sys/mounts/kv1", {{"type", "kv"}, {"description", "before"}}).status,
      204);
  ASSERT_EQ(d_.Root("POST", "/v1/kv1/foo", {{"a", "b"}}).status, 204);

  auto up = d_.Root("POST", "/v1/sys/mounts/kv1/tune",
                    {{"description", "after"}, {"options", {{"version", "2"}}}});
  EXPECT_EQ(up.status, 400) << up.body;
  auto tuned = d_.Root("GET", "/v1/sys/mounts/kv1/tune");
  ASSERT_EQ(tuned.status, 200) << tuned.body;
  EXPECT_EQ(tuned.Json()["data"]["options"]["version"], "1") << tuned.body;
  EXPECT_EQ(tuned.Json()["data"]["description"], "before") << tuned.body;

  auto down = d_.Root("POST", "/v1/sys/mounts/secret/tune", {{"options", {{"version", "1"}}}});
  EXPECT_EQ(down.status, 400) << down.body;
  EXPECT_THAT(down.body, HasSubstr("cannot downgrade mount from version 2"));
  auto bad = d_.Root("POST", "/v1/sys/mounts/secret/tune", {{"options", {{"version", "3"}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(d_.Root("POST", "/v1/sys/mounts/secret/tune", {{"options", {{"version", "2"}}}}).status,
            204);

  // Nothing was persisted either: after a restart the v1 mount still serves its data as v1.
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  auto read = d_.Root("GET", "/v1/kv1/foo");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.Json()["data"]["a"], "b");
  auto after = d_.Root("GET", "/v1/sys/mounts/kv1/tune");
  EXPECT_EQ(after.Json()["data"]["options"]["version"], "1") << after.body;
}

}  // namespace
}  // namespace strongroom::testing
