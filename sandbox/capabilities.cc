#include "sandbox/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace strongroom::sandbox {
namespace {

// The raw system calls (no libcap): version 3 uses two 32-bit words per set.
bool GetCaps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return syscall(SYS_capget, &header, data) == 0;
}

bool Has(const __user_cap_data_struct (&data)[2], int cap) {
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

bool HasSetIdCapabilities() {
  __user_cap_data_struct data[2] = {};
  return GetCaps(data) && Has(data, CAP_SETUID) && Has(data, CAP_SETGID);
}

absl::Status DropAllCapabilities() {
  // Ambient first: a capability stays ambient only while it is permitted and inheritable.
  // EINVAL: a kernel without ambient capabilities (before 4.3), which then has none to clear.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return absl::InternalError(absl::StrCat("PR_CAP_AMBIENT_CLEAR_ALL: ", strerror(errno)));
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[2] = {};
  if (syscall(SYS_capset, &header, none) != 0) {
    return absl::InternalError(absl::StrCat("capset: ", strerror(errno)));
  }
  __user_cap_data_struct now[2] = {};
  if (!GetCaps(now)) return absl::InternalError(absl::StrCat("capget: ", strerror(errno)));
  for (const auto& d : now) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) {
      return absl::InternalError("capabilities are left after dropping them all");
    }
  }
  return absl::OkStatus();
}

}  // namespace strongroom::sandbox
