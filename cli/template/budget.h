// What one Template::Execute may spend: steps of work (Options::max_steps), bytes of the values
// it builds (Options::max_memory_bytes) and time (Options::max_duration). The executor and the
// functions it calls (through CallContext) charge the same Budget before or as they do the
// work, so a hostile template cannot hold the agent for long nor make it allocate much.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace strongroom::tmpl {

struct Options;

// Work (bytes read, compared, searched or copied) that costs one step. A step of execution
// takes some tens of nanoseconds, as do 64 bytes searched with memmem or escaped by `html`, so
// max_steps bounds the time either way (10 million steps: about a second, 640 MB).
inline constexpr uint64_t kBytesPerStep = 64;
// The clock is read whenever this many steps (work included) have passed since it last was.
inline constexpr uint64_t kStepsPerClockCheck = 1024;

class Budget {
 public:
  explicit Budget(const Options& options);

  // One step of execution: a node, a command, a range iteration.
  absl::Status Step() {
    if (++steps_ < fast_until_) return absl::OkStatus();
    return AddSteps(0);
  }
  // `bytes` read, compared or searched without building a value: a step per kBytesPerStep.
  absl::Status ChargeWork(uint64_t bytes);
  // A value of `bytes` built (a string, array or object; see ValueBytes): counts against
  // max_memory_bytes for the rest of the run (nothing is credited back when it is freed) and,
  // as copying, against max_steps.
  absl::Status ChargeMemory(uint64_t bytes);
  // Time spent in the caller's own functions (e.g. the agent's `secret`, which has its own
  // timeouts and is not the template's work) is not counted against max_duration.
  void ExcludeTime(absl::Duration d) { excluded_ += d; }

  static absl::Duration Now();  // a monotonic clock

 private:
  absl::Status AddSteps(uint64_t n);
  absl::Status Check();

  uint64_t max_steps_;
  uint64_t max_memory_;
  absl::Duration max_duration_;
  uint64_t steps_ = 0;       // nodes, commands, iterations
  uint64_t work_bytes_ = 0;  // bytes of work, kBytesPerStep to a step
  uint64_t memory_ = 0;
  uint64_t next_clock_check_ = kStepsPerClockCheck;
  // Step() only counts while steps_ is below this: the step limit and the next clock check are
  // further (work, which could bring them nearer, is charged through AddSteps).
  uint64_t fast_until_ = 0;
  absl::Duration start_;
  absl::Duration excluded_ = absl::ZeroDuration();
};

// Budget errors have this code; the executor reports their message as is.
inline bool IsBudgetError(const absl::Status& s) { return absl::IsResourceExhausted(s); }

// What a JSON value costs against max_memory_bytes: its strings' and keys' bytes plus
// sizeof(json::value) for each element and entry. Walks without recursion.
uint64_t ValueBytes(const boost::json::value& v);

// "64 MiB", "3 KiB" or "1000 bytes".
std::string FormatBytes(uint64_t n);

// a + b and a * b, saturating at UINT64_MAX.
inline uint64_t SatAdd(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }
inline uint64_t SatMul(uint64_t a, uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

}  // namespace strongroom::tmpl
