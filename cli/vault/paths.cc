#include "cli/vault/paths.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::vault {

absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes, unsigned mode) {
  std::string tmp;
  int fd = -1;
  std::random_device rd;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    tmp = absl::StrCat(path, ".tmp.", getpid(), ".", rd());
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return absl::InternalError(absl::StrCat(tmp, ": ", std::strerror(errno)));
  bool ok = fchmod(fd, static_cast<mode_t>(mode & 07777)) == 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(e)));
  }
  return absl::OkStatus();
}

std::string SanitizePath(std::string_view path) {
  std::string_view p = Sv(absl::StripAsciiWhitespace(Av(path)));
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return std::string(p);
}

std::string QueryEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(b) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

// A secret typed at a terminal without echo, or read from a pipe (the first line).
namespace {

// While echo is off: the terminal's settings, put back by a signal that ends the process.
termios g_saved_termios;
volatile sig_atomic_t g_echo_off = 0;

void RestoreEchoAndDie(int sig) {
  if (g_echo_off) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

absl::StatusOr<std::string> ReadSecret(std::string_view prompt) {
  constexpr size_t kMax = 64 * 1024;
  const bool tty = isatty(STDIN_FILENO) != 0;
  struct sigaction previous[3];
  constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  if (tty) {
    std::fprintf(stderr, "%.*s", static_cast<int>(prompt.size()), prompt.data());
    std::fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &g_saved_termios) == 0) {
      struct sigaction sa {};
      sa.sa_handler = RestoreEchoAndDie;
      sigemptyset(&sa.sa_mask);
      for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &previous[i]);
      termios quiet = g_saved_termios;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      g_echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  std::string line;
  bool too_long = false;
  for (;;) {
    char ch;
    ssize_t n = read(STDIN_FILENO, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || ch == '\n') break;
    if (line.size() >= kMax) {
      too_long = true;
      break;
    }
    line.push_back(ch);
  }
  if (g_echo_off) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    g_echo_off = 0;
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous[i], nullptr);
    std::fputc('\n', stderr);
  }
  if (too_long) return absl::InvalidArgumentError("the input is longer than 64 KiB");
  std::string trimmed(absl::StripAsciiWhitespace(line));
  if (trimmed.empty()) return absl::InvalidArgumentError("no input");
  return trimmed;
}

}  // namespace strongroom::vault
