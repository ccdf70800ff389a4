// ACL policies in barrier storage (`sys/policy/<name>`, the HCL text as written) and the ACL a
// token's policies make. "root" is implicit and unreadable; "default" is built in and editable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"
#include "policy/acl.h"
#include "policy/param_value.h"

namespace strongroom::core {

class PolicyStore {
 public:
  explicit PolicyStore(storage::Storage* barrier) : storage_(barrier) {}

  // Lower-cases and checks a policy name (letters, digits, '-', '_', '.', 1..128 chars).
  static absl::StatusOr<std::string> NormalizeName(std::string_view name);

  // The text of a policy; nullopt when it does not exist. "root" has no text (nullopt).
  absl::StatusOr<std::optional<std::string>> GetText(const std::string& name);
  absl::Status Put(const std::string& name, const std::string& text);
  absl::Status Delete(const std::string& name);
  // Every policy name, sorted, including "default" and "root".
  absl::StatusOr<std::vector<std::string>> List();
  // Whether a named policy exists (for "Policy does not exist" warnings).
  absl::StatusOr<bool> Exists(const std::string& name);

  // The ACL of a token holding `names`. Unknown names act as empty policies (as in Vault).
  // `identity` renders templated paths (nullptr: every templated path is dropped).
  absl::StatusOr<policy::Acl> BuildAcl(const std::vector<std::string>& names,
                                       const policy::IdentityContext* identity = nullptr);
  // Drops every cached policy. A load or write that read or wrote the store before this call
  // does not fill the cache after it (the store may have changed in between: a standby).
  void Clear();

 private:
  absl::StatusOr<std::shared_ptr<const policy::Policy>> Load(const std::string& name);

  uint64_t Generation() {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }

  storage::Storage* storage_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const policy::Policy>> cache_;  // mu_
  // Clear() calls so far (mu_): a policy read from the store before one is not cached after it.
  uint64_t generation_ = 0;
};

// Request data as the policy library sees it.
std::vector<policy::ParamEntry> ToParamEntries(const json::object& data);

}  // namespace strongroom::core
