#include "appliance/core/version_history.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "appliance/core/json.h"
#include "base/status_macros.h"

namespace strongroom::core {
namespace {

constexpr char kPrefix[] = "core/versions/";
constexpr size_t kMaxVersions = 1000;  // one record per release: never near this

}  // namespace

absl::Status RecordInstalledVersion(storage::Storage& barrier, std::string_view version,
                                    std::string_view build_date, absl::Time now) {
  if (version.empty() || version.size() > 128 || version.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError("bad version string");
  }
  const std::string key = absl::StrCat(kPrefix, absl::string_view(version.data(), version.size()));
  ASSIGN_OR_RETURN(auto existing, barrier.Get(key));
  if (existing) return absl::OkStatus();
  json::object o;
  o["version"] = std::string(version);
  o["build_date"] = std::string(build_date);
  o["timestamp_installed_unix_ns"] = absl::ToUnixNanos(now);
  return barrier.Put(key, Serialize(o));
}

absl::StatusOr<std::vector<InstalledVersion>> InstalledVersions(storage::Storage& barrier) {
  ASSIGN_OR_RETURN(auto names, barrier.List(kPrefix));
  std::vector<InstalledVersion> out;
  for (const auto& name : names) {
    if (out.size() >= kMaxVersions) break;
    ASSIGN_OR_RETURN(auto raw, barrier.Get(absl::StrCat(kPrefix, name)));
    if (!raw) continue;
    ASSIGN_OR_RETURN(auto o, ParseObject(*raw));
    InstalledVersion v;
    v.version = GetString(o, "version").value_or(std::nullopt).value_or(name);
    v.build_date = GetString(o, "build_date").value_or(std::nullopt).value_or("");
    v.installed = absl::FromUnixNanos(
        GetInt(o, "timestamp_installed_unix_ns").value_or(std::nullopt).value_or(0));
    out.push_back(std::move(v));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.installed != b.installed ? a.installed < b.installed : a.version < b.version;
  });
  return out;
}

}  // namespace strongroom::core
