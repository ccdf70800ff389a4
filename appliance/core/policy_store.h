// ACL policies in barrier storage (`sys/policy/<name>`, the HCL text as written) and the ACL a
// token's policies make. "root" is implicit and unreadable; "default" is built in and editable.
//
// Two caches, neither of which can be stale:
// - parsed policies, each kept with the stored bytes it was decrypted from (Barrier::GetStored)
//   and used only while its key still holds those bytes under the same keyring: a write or
//   delete here, a Raft entry applied on a follower, an installed snapshot are all seen by the
//   next use, with no invalidation to miss;
// - compiled ACLs, memoised by the very policy objects (and identity source) they were compiled
//   from, which the memo holds so their addresses cannot be reused: a changed policy is a new
//   object, hence a new key.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/barrier.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"
#include "policy/acl.h"
#include "policy/param_value.h"

namespace strongroom::core {

class PolicyStore {
 public:
  explicit PolicyStore(Barrier* barrier) : storage_(barrier) {}

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
  // The same, memoised (see above). `identity_source` is the immutable object the identity
  // context is made from (the token's entity; nullptr: no identity), and `identity` makes that
  // context when the ACL has to be compiled.
  absl::StatusOr<std::shared_ptr<const policy::Acl>> CompiledAcl(
      const std::vector<std::string>& names, std::shared_ptr<const void> identity_source,
      const std::function<policy::IdentityContext()>& identity);
  void Clear();

  // At most this many compiled ACLs are kept (the memo starts afresh when full).
  static constexpr size_t kMaxCompiledAcls = 1024;
  size_t compiled_acls() const;

 private:
  // The policy objects `names` stand for, in order ("root" as one shared object).
  absl::StatusOr<std::vector<std::shared_ptr<const policy::Policy>>> LoadAll(
      const std::vector<std::string>& names);
  absl::StatusOr<std::shared_ptr<const policy::Policy>> Load(const std::string& name);

  struct Cached {
    std::optional<std::string> stored;  // nullopt: the key was absent
    uint64_t generation = 0;
    std::shared_ptr<const policy::Policy> policy;
  };
  struct Compiled {
    std::vector<std::shared_ptr<const void>> inputs;  // held: keeps the key's addresses unique
    std::shared_ptr<const policy::Acl> acl;
  };

  Barrier* storage_;
  mutable std::mutex mu_;
  std::map<std::string, Cached> cache_;
  std::map<std::vector<const void*>, Compiled> compiled_;
};

// Request data as the policy library sees it.
std::vector<policy::ParamEntry> ToParamEntries(const json::object& data);

}  // namespace strongroom::core
