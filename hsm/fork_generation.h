// Which copy of the process this is: how many fork() calls lie between the process that started
// and the one asking (0 in the original, 1 in its child, ...). PKCS#11 state, and anything
// derived from it or from a random generator's output, must never be used on both sides of a
// fork; code that holds such state records ForkGeneration() when it creates it and compares on
// use.
//
// A pthread_atfork child handler does the counting, so reading it costs no system call. That is
// the point: getpid() is a system call, about 1 us of CPU on the virtualised 2-vCPU hosts we
// measure on, and a check per PKCS#11 operation made it a visible share of a Transit request.
// Only fork() (and library functions built on it) runs the handler. posix_spawn and vfork
// children exec at once without running our code, so they do not count.
#pragma once

#include <cstdint>

namespace strongroom::hsm {

// The first call registers the handler; state created after it is covered by every later fork.
uint64_t ForkGeneration();

}  // namespace strongroom::hsm
