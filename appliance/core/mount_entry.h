// JSON forms of mount entries: the persisted mount table and Vault's mount info objects.
#pragma once

#include "absl/status/statusor.h"
#include "appliance/core/backend.h"
#include "appliance/core/json.h"

namespace strongroom::core {

json::object MountConfigToJson(const MountConfig& c);
// Reads Vault's config fields over `base` (only fields present change).
absl::StatusOr<MountConfig> MountConfigFromJson(const json::object& o, MountConfig base);
json::object MountEntryToJson(const MountEntry& e);
// Vault's "options" value: null when there are none.
json::value MountOptionsToJson(const std::map<std::string, std::string>& options);
absl::StatusOr<MountEntry> MountEntryFromJson(const json::object& o);

}  // namespace strongroom::core
