// An LD_PRELOAD shim for durability tests: after every fdatasync() or fsync() that succeeds on a
// file whose path ends with $STRONGROOM_SYNC_SPY_SUFFIX, it appends the file's size at that moment
// ("<bytes>\n") to $STRONGROOM_SYNC_SPY_LOG. A test then knows which prefix of the file the
// process had made durable before it answered. Calls pass through unchanged.
// With $STRONGROOM_SYNC_SPY_STALL set to a path, a sync of a matching file made while that path
// exists never returns (it creates "<path>.held" and sleeps): a test then kills the process with
// a write appended but not synced, as a power loss in the middle of a sync would find it.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using SyncFn = int (*)(int);

// Whether `fd` is a file whose path ends with $STRONGROOM_SYNC_SPY_SUFFIX.
bool Matches(int fd) {
  const char* suffix = std::getenv("STRONGROOM_SYNC_SPY_SUFFIX");
  if (suffix == nullptr) return false;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[4096];
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  const size_t len = static_cast<size_t>(n);
  const size_t slen = std::strlen(suffix);
  return len >= slen && std::strcmp(target + len - slen, suffix) == 0;
}

void StallIfAsked(int fd) {
  const char* stall = std::getenv("STRONGROOM_SYNC_SPY_STALL");
  if (stall == nullptr || ::access(stall, F_OK) != 0 || !Matches(fd)) return;
  char held[4096];
  std::snprintf(held, sizeof held, "%s.held", stall);
  const int h = ::open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (h >= 0) ::close(h);
  for (;;) ::pause();
}

void Record(int fd) {
  const char* log = std::getenv("STRONGROOM_SYNC_SPY_LOG");
  if (log == nullptr || !Matches(fd)) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  char line[32];
  const int m = std::snprintf(line, sizeof line, "%lld\n", static_cast<long long>(st.st_size));
  const int out = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (out < 0) return;
  if (::write(out, line, static_cast<size_t>(m)) != m) std::perror("sync_spy");
  ::close(out);
}

int Spy(const char* name, int fd) {
  const auto real = reinterpret_cast<SyncFn>(::dlsym(RTLD_NEXT, name));
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  StallIfAsked(fd);
  const int rc = real(fd);
  if (rc == 0) {
    const int saved = errno;
    Record(fd);
    errno = saved;
  }
  return rc;
}

}  // namespace

extern "C" int fdatasync(int fd) { return Spy("fdatasync", fd); }
extern "C" int fsync(int fd) { return Spy("fsync", fd); }
