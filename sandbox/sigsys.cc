#include "sandbox/sigsys.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sandbox/lsan.h"

namespace strongroom::sandbox {
namespace {

const char* g_prefix = "seccomp: syscall ";
const char* g_suffix = " is outside the policy; exiting\n";

// Async-signal-safe: formats the number by hand and writes once.
void OnSigsys(int, siginfo_t* info, void*) {
  char buf[160];
  size_t n = 0;
  for (const char* p = g_prefix; *p != '\0' && n < 64; ++p) buf[n++] = *p;
  char digits[16];
  int d = 0;
  unsigned v = static_cast<unsigned>(info->si_syscall);
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && d < 15);
  while (d > 0) buf[n++] = digits[--d];
  for (const char* p = g_suffix; *p != '\0' && n < sizeof buf; ++p) buf[n++] = *p;
  (void)!write(STDERR_FILENO, buf, n);
  // The handler was installed with SA_RESETHAND: this SIGSYS (pending until the handler
  // returns) kills the process, and its parent sees "killed by signal 31".
  raise(SIGSYS);
}

}  // namespace

absl::Status InstallSigsysReport(const char* prefix, const char* suffix) {
  g_prefix = prefix;
  g_suffix = suffix;
  struct sigaction sa = {};
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) {
    return absl::InternalError(absl::StrCat("sigaction(SIGSYS): ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status LoadFilter(scmp_filter_ctx ctx) {
  LeakCheckBeforeFilter();
  if (int r = seccomp_load(ctx); r != 0) {
    return absl::InternalError(absl::StrCat("seccomp_load: ", strerror(-r)));
  }
  return absl::OkStatus();
}

}  // namespace strongroom::sandbox
