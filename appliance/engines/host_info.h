// sys/host-info's data, gathered from /proc, statvfs and uname in the shapes Vault reports
// (Vault uses gopsutil; the key names are its JSON names): cpu, cpu_times, disk, host, memory,
// timestamp. Every file read is bounded; what cannot be read is left out and named in
// `warnings`, as Vault adds its collection errors as warnings.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"

namespace strongroom::engines {

// Where the files are read from ("/proc", "/etc"): tests point them at fixtures.
struct HostInfoSources {
  std::string proc = "/proc";
  std::string etc = "/etc";
};

core::json::object CollectHostInfo(const HostInfoSources& sources, absl::Time now,
                                   std::vector<std::string>* warnings);

// The contents of `path`, at most `max_bytes` (ResourceExhausted when it is longer).
absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, size_t max_bytes);

// Parsers of one /proc file each (exposed for tests).
core::json::array ParseCpuInfo(absl::string_view text);
core::json::array ParseCpuTimes(absl::string_view proc_stat, long ticks_per_second);
core::json::object ParseMemInfo(absl::string_view text);
// /proc/self/mounts' escapes ("\040" for a space) undone.
std::string UnescapeMountField(absl::string_view field);

}  // namespace strongroom::engines
