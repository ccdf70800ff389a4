// An LD_PRELOAD shim for durability tests: after every fdatasync() or fsync() that succeeds on a
// file whose path ends with $STRONGROOM_SYNC_SPY_SUFFIX, it appends the file's size at that moment
// ("<bytes>\n") to $STRONGROOM_SYNC_SPY_LOG. A test then knows which prefix of the file the
// process had made durable before it answered. Calls pass through unchanged.
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

void Record(int fd) {
  const char* suffix = std::getenv("STRONGROOM_SYNC_SPY_SUFFIX");
  const char* log = std::getenv("STRONGROOM_SYNC_SPY_LOG");
  if (suffix == nullptr || log == nullptr) return;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[4096];
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return;
  target[n] = '\0';
  const size_t len = static_cast<size_t>(n);
  const size_t slen = std::strlen(suffix);
  if (len < slen || std::strcmp(target + len - slen, suffix) != 0) return;
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
