#include "cli/template/budget.h"

#include <algorithm>
#include <vector>

#include "cli/template/strings.h"
#include "cli/template/template.h"

namespace strongroom::tmpl {

Budget::Budget(const Options& options)
    : max_steps_(options.max_steps),
      max_memory_(options.max_memory_bytes),
      max_duration_(options.max_duration),
      start_(Now()) {}

absl::Duration Budget::Now() {
  return absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch()));
}

absl::Status Budget::AddSteps(uint64_t n) {
  steps_ = SatAdd(steps_, n);
  const uint64_t total = SatAdd(steps_, work_bytes_ / kBytesPerStep);
  absl::Status status;
  if (total > max_steps_ || total >= next_clock_check_) status = Check();
  const uint64_t to_limit = max_steps_ - std::min(max_steps_, total);  // steps still allowed
  const uint64_t to_clock = next_clock_check_ - std::min(next_clock_check_, total);
  fast_until_ = status.ok() ? SatAdd(steps_, std::min(to_limit, to_clock)) : 0;
  return status;
}

absl::Status Budget::ChargeWork(uint64_t bytes) {
  work_bytes_ = SatAdd(work_bytes_, bytes);
  return AddSteps(0);
}

absl::Status Budget::ChargeMemory(uint64_t bytes) {
  memory_ = SatAdd(memory_, bytes);
  if (memory_ > max_memory_) {
    return absl::ResourceExhaustedError(
        StrCat("template uses more than ", FormatBytes(max_memory_), " of memory"));
  }
  return ChargeWork(bytes);
}

absl::Status Budget::Check() {
  const uint64_t total = SatAdd(steps_, work_bytes_ / kBytesPerStep);
  if (total > max_steps_) {
    return absl::ResourceExhaustedError(StrCat("execution exceeded ", max_steps_, " steps"));
  }
  if (total >= next_clock_check_) {
    next_clock_check_ = SatAdd(total, kStepsPerClockCheck);
    if (Now() - start_ - excluded_ > max_duration_) {
      return absl::ResourceExhaustedError(
          StrCat("template ran longer than ", absl::FormatDuration(max_duration_)));
    }
  }
  return absl::OkStatus();
}

uint64_t ValueBytes(const boost::json::value& root) {
  namespace json = boost::json;
  uint64_t total = 0;
  std::vector<const json::value*> stack = {&root};
  while (!stack.empty()) {
    const json::value* v = stack.back();
    stack.pop_back();
    switch (v->kind()) {
      case json::kind::string:
        total = SatAdd(total, v->get_string().size());
        break;
      case json::kind::array:
        for (const json::value& e : v->get_array()) {
          total = SatAdd(total, sizeof(json::value));
          stack.push_back(&e);
        }
        break;
      case json::kind::object:
        for (const json::key_value_pair& kv : v->get_object()) {
          total = SatAdd(total, sizeof(json::key_value_pair) + kv.key().size());
          stack.push_back(&kv.value());
        }
        break;
      default:
        break;
    }
  }
  return total;
}

std::string FormatBytes(uint64_t n) {
  constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  if (n >= kGiB && n % kGiB == 0) return StrCat(n / kGiB, " GiB");
  if (n >= kMiB && n % kMiB == 0) return StrCat(n / kMiB, " MiB");
  if (n >= kKiB && n % kKiB == 0) return StrCat(n / kKiB, " KiB");
  return StrCat(n, " bytes");
}

}  // namespace strongroom::tmpl
