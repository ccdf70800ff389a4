#include "tests/support/softhsm_token.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace strongroom::test_support {
namespace {

constexpr const char* kConfEnv = "SOFTHSM2_CONF";

// The environment calls in this file (getenv/setenv/unsetenv) are not thread-safe; the class
// documents that tokens are made and destroyed while no other test thread runs. Hence the
// NOLINT(concurrency-mt-unsafe) markers.

std::string ErrText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof buf);  // GNU form; std::strerror may share a buffer
}

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

// Runs argv[0] (looked up in PATH) with stdio on /dev/null and our environment, which by now
// carries SOFTHSM2_CONF; fails unless it exits 0.
absl::Status RunQuiet(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int err = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", args[0], ": ", ErrText(err)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid for ", args[0], ": ", ErrText(errno)));
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status)) {
    return absl::InternalError(
        absl::StrCat(args[0], " ", args[1], " exited with status ", WEXITSTATUS(status)));
  }
  return absl::InternalError(absl::StrCat(args[0], " ", args[1], " died with signal ",
                                          WIFSIGNALED(status) ? WTERMSIG(status) : -1));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SoftHsmToken>> SoftHsmToken::Create(const std::string& label,
                                                                   const std::string& pin,
                                                                   const std::string& so_pin) {
  std::unique_ptr<SoftHsmToken> t(new SoftHsmToken());
  t->label_ = label;
  t->pin_ = pin;
  t->so_pin_ = so_pin;

  std::string tmpl = TempRoot() + "/strongroom-softhsm-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp in ", TempRoot(), ": ", ErrText(errno)));
  }
  // From here on the destructor cleans up, including on the error paths below.
  t->dir_ = std::filesystem::absolute(tmpl).string();
  t->conf_path_ = t->dir_ + "/softhsm2.conf";
  const std::string token_dir = t->dir_ + "/tokens";
  if (mkdir(token_dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("mkdir ", token_dir, ": ", ErrText(errno)));
  }
  {
    std::ofstream conf(t->conf_path_, std::ios::out | std::ios::trunc);
    conf << "# written by strongroom's SoftHsmToken test helper\n"
         << "directories.tokendir = " << token_dir << "/\n"
         << "objectstore.backend = file\n"
         << "log.level = ERROR\n"
         << "slots.removable = false\n"
         << "slots.mechanisms = ALL\n"
         << "library.reset_on_fork = false\n";
    conf.close();
    if (!conf) return absl::InternalError(absl::StrCat("cannot write ", t->conf_path_));
  }

  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* prev = std::getenv(kConfEnv); prev != nullptr) {
    t->had_previous_conf_ = true;
    t->previous_conf_ = prev;
  }
  t->Activate();

  absl::Status st = RunQuiet({"softhsm2-util", "--init-token", "--free", "--label", label, "--pin",
                              pin, "--so-pin", so_pin});
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat("initialising SoftHSM2 token \"", label, "\" in ",
                                                t->dir_, ": ", st.message()));
  }
  return t;
}

void SoftHsmToken::Activate() const {
  setenv(kConfEnv, conf_path_.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
}

SoftHsmToken::~SoftHsmToken() {
  if (conf_path_.empty()) return;               // mkdtemp failed: nothing was made or changed
  const char* current = std::getenv(kConfEnv);  // NOLINT(concurrency-mt-unsafe)
  // Only undo our own setting; if a newer token took over SOFTHSM2_CONF, leave it alone.
  if (current != nullptr && conf_path_ == current) {
    if (had_previous_conf_) {
      setenv(kConfEnv, previous_conf_.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
    } else {
      unsetenv(kConfEnv);  // NOLINT(concurrency-mt-unsafe)
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace strongroom::test_support
