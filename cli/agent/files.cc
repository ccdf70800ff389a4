#include "cli/agent/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "appliance/core/json.h"
#include "base/strings.h"

namespace strongroom::agent {
namespace {

absl::Status Errno(std::string_view what, const std::string& path) {
  const int e = errno;
  std::string message = absl::StrCat(Av(what), " ", path, ": ", std::strerror(e));
  if (e == ENOENT) return absl::NotFoundError(message);
  return absl::FailedPreconditionError(message);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// mkdir -p, one prefix after another (no recursion).
absl::Status MakeDirs(const std::string& dir) {
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    const std::string prefix = dir.substr(0, end);
    struct stat st;
    if (stat(prefix.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrCat(prefix, " is not a directory"));
      }
    } else if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno("cannot create", prefix);
    }
    if (end == std::string::npos) return absl::OkStatus();
  }
}

}  // namespace

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return Errno("cannot open", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::optional<uint32_t> ExistingMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<uint32_t>(st.st_mode & 07777);
}

absl::Status AtomicWrite(const std::string& path, std::string_view content, uint32_t mode,
                         bool create_dirs) {
  if (path.empty() || path.size() > 4000) return absl::InvalidArgumentError("bad file path");
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " names a directory"));
  if (create_dirs) {
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  }
  // A name of fixed length: any file name the file system takes for `path` still works (a
  // name built from the destination's would pass NAME_MAX first).
  const std::string tmp = absl::StrCat(dir, "/.sr-", core::RandomHex(8), ".tmp");
  Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Errno("cannot create", tmp);
  auto fail = [&](std::string_view what) {
    absl::Status s = Errno(what, tmp);
    unlink(tmp.c_str());
    return s;
  };
  // fchmod after open: the mode is exact whatever the umask.
  if (fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) return fail("cannot chmod");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail("cannot sync");
  if (close(fd.Release()) != 0) return fail("cannot close");
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename over");
  // The rename itself durable (best effort: some file systems refuse fsync on a directory).
  Fd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) fsync(dfd.get());
  return absl::OkStatus();
}

absl::Status RunCommand(const std::string& command, absl::Duration timeout) {
  const pid_t pid = fork();
  if (pid < 0) return absl::UnavailableError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    // The command gets default signals: none blocked (the agent blocks its own), none ignored
    // (the runner ignores SIGTERM and SIGINT, which exec would otherwise pass on).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return absl::InternalError("waitpid failed");
    if (absl::Now() >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::DeadlineExceededError(
          absl::StrCat("command timed out after ", absl::FormatDuration(timeout)));
    }
    usleep(20000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status)) {
    return absl::UnknownError(absl::StrCat("command exited with status ", WEXITSTATUS(status)));
  }
  return absl::UnknownError(absl::StrCat("command ended by signal ", WTERMSIG(status)));
}

}  // namespace strongroom::agent
