#include "sandbox/broker_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "sandbox/sigsys.h"

namespace strongroom::sandbox {

absl::Status InstallBrokerFilter() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW),
                                                       seccomp_release);
  if (!ctx) return absl::InternalError("seccomp_init failed");
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);
  const auto deny = [&](int nr) {
    if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, nr, 0);
  };
  // No new programs: workers come from the spawner.
  deny(SCMP_SYS(execve));
  deny(SCMP_SYS(execveat));
  // No reaching into other processes.
  deny(SCMP_SYS(ptrace));
  deny(SCMP_SYS(process_vm_readv));
  deny(SCMP_SYS(process_vm_writev));
  deny(SCMP_SYS(pidfd_getfd));
  deny(SCMP_SYS(kcmp));
  // No new processes, threads only: fork/vfork die; clone must carry CLONE_THREAD; clone3
  // answers ENOSYS so that glibc falls back to clone, whose flags the filter can read.
  deny(SCMP_SYS(fork));
  deny(SCMP_SYS(vfork));
  if (rc == 0) {
    rc = seccomp_rule_add(ctx.get(), SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
  }
  if (rc == 0) rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  // No kernel changes.
  deny(SCMP_SYS(kexec_load));
  deny(SCMP_SYS(kexec_file_load));
  deny(SCMP_SYS(init_module));
  deny(SCMP_SYS(finit_module));
  deny(SCMP_SYS(delete_module));
  deny(SCMP_SYS(bpf));
  deny(SCMP_SYS(perf_event_open));
  deny(SCMP_SYS(userfaultfd));
  deny(SCMP_SYS(iopl));
  deny(SCMP_SYS(ioperm));
  deny(SCMP_SYS(reboot));
  deny(SCMP_SYS(swapon));
  deny(SCMP_SYS(swapoff));
  deny(SCMP_SYS(acct));
  deny(SCMP_SYS(settimeofday));
  deny(SCMP_SYS(clock_settime));
  deny(SCMP_SYS(clock_adjtime));
  deny(SCMP_SYS(adjtimex));
  // No kernel keyrings (nothing of ours lives there), no file handles around permissions.
  deny(SCMP_SYS(keyctl));
  deny(SCMP_SYS(add_key));
  deny(SCMP_SYS(request_key));
  deny(SCMP_SYS(open_by_handle_at));
  // No mounts, root or namespace changes.
  deny(SCMP_SYS(mount));
  deny(SCMP_SYS(umount2));
  deny(SCMP_SYS(pivot_root));
  deny(SCMP_SYS(chroot));
  deny(SCMP_SYS(setns));
  deny(SCMP_SYS(unshare));
  deny(SCMP_SYS(personality));
  if (rc != 0) return absl::InternalError(absl::StrCat("seccomp_rule_add: ", strerror(-rc)));
  // LeakSanitizer's exit-time check needs clone and ptrace: in sanitizer builds it runs now.
  return LoadFilter(ctx.get());
}

}  // namespace strongroom::sandbox
