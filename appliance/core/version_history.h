// The versions of strongroom this cluster has run (Vault's sys/version-history): one barrier
// record per version, written when a node running it unseals as the active node.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/storage/storage.h"

namespace strongroom::core {

struct InstalledVersion {
  std::string version;
  std::string build_date;  // empty when unknown (Vault: null)
  absl::Time installed;
};

// Records `version` as installed at `now` unless it is recorded already (the first time a
// version ran is its installation time).
absl::Status RecordInstalledVersion(storage::Storage& barrier, std::string_view version,
                                    std::string_view build_date, absl::Time now);
// Every recorded version, oldest installation first.
absl::StatusOr<std::vector<InstalledVersion>> InstalledVersions(storage::Storage& barrier);

}  // namespace strongroom::core
