// PolicyStore's cache of parsed policies is never older than the store, even when the store
// changes between a load's read and its caching, or after Clear() (a standby drops the cache
// when a policy changes in its store).
#include "appliance/core/policy_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "appliance/core/barrier.h"
#include "appliance/storage/memory_storage.h"

namespace strongroom::core {
namespace {

// A store whose Get (Put) of one key runs `after_get` (`after_put`) once, after the value was
// read (written): as if the store changed right after.
class HookedStorage final : public storage::Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    auto v = inner.Get(key);
    if (key == hooked_key && after_get) {
      auto hook = std::move(after_get);
      after_get = nullptr;
      hook();
    }
    return v;
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    absl::Status s = inner.Put(key, value);
    if (key == hooked_key && after_put) {
      auto hook = std::move(after_put);
      after_put = nullptr;
      hook();
    }
    return s;
  }
  absl::Status Delete(std::string_view key) override { return inner.Delete(key); }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override {
    return inner.List(prefix);
  }
  absl::Status Apply(const std::vector<storage::BatchOp>& ops) override { return inner.Apply(ops); }

  storage::MemoryStorage inner;
  std::string hooked_key;
  std::function<void()> after_get;
  std::function<void()> after_put;  // the same, after a Put of `hooked_key`
};

constexpr char kRead[] = "path \"secret/*\" { capabilities = [\"read\"] }";
constexpr char kDeny[] = "path \"secret/*\" { capabilities = [\"deny\"] }";

// The policy store over a barrier over `physical`, as in the broker.
struct Stores {
  explicit Stores(storage::Storage* physical) : barrier(physical) {
    barrier.Unseal(std::move(*Keyring::Generate(1)));
  }
  Barrier barrier;
  PolicyStore store{&barrier};
};

bool CanRead(PolicyStore& store) {
  auto acl = store.BuildAcl({"p"});
  EXPECT_TRUE(acl.ok()) << acl.status();
  if (!acl.ok()) return false;
  const std::vector<std::string> caps = acl->Capabilities("secret/x");
  return std::find(caps.begin(), caps.end(), "read") != caps.end();
}

TEST(PolicyStoreCache, APolicyReadBeforeAClearIsNotKeptAfterIt) {
  HookedStorage s;
  Stores stores(&s);
  PolicyStore& store = stores.store;
  ASSERT_TRUE(stores.barrier.Put("sys/policy/p", kRead).ok());
  // A load reads "read"; before it keeps what it read, the policy changes in the store (a
  // replicated write) and the cache is dropped for it.
  s.hooked_key = "sys/policy/p";
  s.after_get = [&] {
    ASSERT_TRUE(stores.barrier.Put("sys/policy/p", kDeny).ok());
    store.Clear();
  };
  EXPECT_TRUE(CanRead(store));  // that load's own answer: the policy as it read it
  // Every later one: the policy the store holds.
  EXPECT_FALSE(CanRead(store));
  EXPECT_FALSE(CanRead(store));
}

TEST(PolicyStoreCache, AWriteCachedAfterAClearIsNotKeptEither) {
  HookedStorage s;
  Stores stores(&s);
  PolicyStore& store = stores.store;
  ASSERT_TRUE(store.Put("p", kRead).ok());
  EXPECT_TRUE(CanRead(store));
  // Written (as the active node), then, before it is cached, changed by another node (a newer
  // leader) and the cache dropped: the stored version wins.
  s.hooked_key = "sys/policy/p";
  s.after_put = [&] {
    ASSERT_TRUE(stores.barrier.Put("sys/policy/p", kDeny).ok());
    store.Clear();
  };
  ASSERT_TRUE(store.Put("p", kRead).ok());
  EXPECT_FALSE(CanRead(store));
}

}  // namespace
}  // namespace strongroom::core
