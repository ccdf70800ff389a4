// Transit's key objects in a real SoftHSM2 token, in this process: a Core with the PKCS#11 seal
// over MemoryStorage, and a KeyStore driven directly, so that a request's use of a key object
// can be held open across a delete, a trim or a sweep (what concurrent requests do, without
// timing). The nonce source is tested here too.
#include "appliance/engines/transit_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "appliance/core/core.h"
#include "appliance/core/seal.h"
#include "appliance/engines/registry.h"
#include "appliance/engines/transit_crypto.h"
#include "appliance/engines/transit_keys.h"
#include "appliance/storage/memory_storage.h"
#include "hsm/token.h"
#include "tests/support/softhsm_token.h"

namespace strongroom::testing {
namespace {

using engines::transit::Bytes;
using engines::transit::Key;
using engines::transit::KeyStore;
using engines::transit::kNonceBytes;
using engines::transit::kNoncesPerDraw;
using engines::transit::NextNonce;
using engines::transit::RegistryKey;
using engines::transit::TokenKey;
using engines::transit::Version;

using Nonce = std::array<uint8_t, kNonceBytes>;

class TransitKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = test_support::SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.status();
    softhsm_ = std::move(*token);
    core::Pkcs11SealConfig seal;
    seal.token = {.lib = softhsm_->lib(),
                  .token_label = softhsm_->label(),
                  .slot = std::nullopt,
                  .pin_spec = softhsm_->pin()};
    core::CoreOptions options;
    options.engines = engines::EngineTable();
    options.clock = [] { return absl::FromUnixSeconds(1700000000); };
    core_ = std::make_unique<core::Core>(std::move(options), &physical_,
                                         std::make_unique<core::Pkcs11Seal>(std::move(seal)));
    core_->Start();
    core::InitRequest init;
    init.recovery_shares = 1;
    init.recovery_threshold = 1;
    auto result = core_->Initialize(init);
    ASSERT_TRUE(result.ok()) << result.status();
    store_ = std::make_unique<KeyStore>(core_.get(), "test-mount");
    auto t = store_->Token();
    ASSERT_TRUE(t.ok()) << t.status();
    token_ = *t;
  }
  void TearDown() override {
    store_.reset();
    core_.reset();
    softhsm_.reset();
  }

  // A key of `type` with one version, as transit/keys/<name> makes it.
  std::shared_ptr<Key> NewKey(const std::string& name, const std::string& type) {
    auto k = std::make_shared<Key>();
    k->name = name;
    k->type = type;
    std::lock_guard<std::mutex> lock(k->mu);
    absl::Status s = store_->RotateLocked(storage_, *k, nullptr);
    EXPECT_TRUE(s.ok()) << s;
    store_->Insert(k);
    return k;
  }
  // What a request does: the object of version 1, taken under the key's mutex.
  std::shared_ptr<TokenKey> Use(Key& k, bool hmac = false) {
    std::lock_guard<std::mutex> lock(k.mu);
    auto h = store_->Handle(k, 1, k.versions[1], hmac);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : nullptr;
  }
  // What transit/keys/<name> DELETE does once deletion is allowed.
  void Delete(Key& k) {
    std::lock_guard<std::mutex> lock(k.mu);
    ASSERT_TRUE(storage_.Delete(engines::transit::kKeyPrefix + k.name).ok());
    store_->Forget(k.name);
    std::map<int64_t, Version> removed = std::move(k.versions);
    k.versions.clear();
    k.latest_version = 0;
    store_->ReleaseVersions(storage_, removed);
  }
  bool Encrypts(CK_OBJECT_HANDLE h) {
    const uint8_t iv[12] = {};
    return token_->AesGcmEncrypt(h, iv, Bytes("aad"), Bytes("plaintext")).ok();
  }

  std::unique_ptr<test_support::SoftHsmToken> softhsm_;
  storage::MemoryStorage physical_;  // the core's
  storage::MemoryStorage storage_;   // the mount's view
  std::unique_ptr<core::Core> core_;
  std::unique_ptr<KeyStore> store_;
  hsm::Token* token_ = nullptr;
};

// A request that took a version's key object before the key was deleted finishes with it; the
// object is destroyed when that request lets go of it, not before and not never.
TEST_F(TransitKeyStoreTest, ADeletedVersionsObjectLivesUntilItsLastUse) {
  auto k = NewKey("busy", "aes256-gcm96");
  std::shared_ptr<TokenKey> in_flight = Use(*k);
  ASSERT_NE(in_flight, nullptr);
  std::shared_ptr<TokenKey> hmac_in_flight = Use(*k, /*hmac=*/true);
  ASSERT_NE(hmac_in_flight, nullptr);
  const CK_OBJECT_HANDLE handle = in_flight->handle();
  const CK_OBJECT_HANDLE hmac_handle = hmac_in_flight->handle();
  ASSERT_TRUE(Encrypts(handle));

  Delete(*k);
  EXPECT_TRUE(Encrypts(handle)) << "the in-flight request's key object was destroyed under it";
  EXPECT_TRUE(token_->Hmac(hmac_handle, CKM_SHA256_HMAC, Bytes("input")).ok());

  in_flight.reset();
  hmac_in_flight.reset();
  EXPECT_FALSE(Encrypts(handle)) << "the object outlived its last use";
  EXPECT_FALSE(token_->Hmac(hmac_handle, CKM_SHA256_HMAC, Bytes("input")).ok());
}

// Nobody using it: the object goes with the delete.
TEST_F(TransitKeyStoreTest, AnUnusedVersionsObjectGoesWithTheDelete) {
  auto k = NewKey("idle", "aes128-gcm96");
  const CK_OBJECT_HANDLE handle = Use(*k)->handle();  // made, then let go of
  ASSERT_TRUE(Encrypts(handle));
  Delete(*k);
  EXPECT_FALSE(Encrypts(handle));
}

// Trimmed versions: the same rule, through the same ReleaseVersions.
TEST_F(TransitKeyStoreTest, ATrimmedVersionsObjectLivesUntilItsLastUse) {
  auto k = NewKey("trimmed", "aes256-gcm96");
  {
    std::lock_guard<std::mutex> lock(k->mu);
    ASSERT_TRUE(store_->RotateLocked(storage_, *k, nullptr).ok());
  }
  std::shared_ptr<TokenKey> in_flight = Use(*k);
  const CK_OBJECT_HANDLE handle = in_flight->handle();
  {
    std::lock_guard<std::mutex> lock(k->mu);
    std::map<int64_t, Version> removed;
    removed.insert(k->versions.extract(1));
    k->min_available_version = 2;
    ASSERT_TRUE(store_->Save(storage_, *k).ok());
    store_->ReleaseVersions(storage_, removed);
  }
  EXPECT_TRUE(Encrypts(handle));
  in_flight.reset();
  EXPECT_FALSE(Encrypts(handle));
}

// A private key the token cannot wrap is a token object (ed25519 on SoftHSM2 2.6.1). Deleted
// while a request signs with it, it stays until that request is done, the hourly sweep leaves
// it alone meanwhile, and afterwards the sweep clears its record.
TEST_F(TransitKeyStoreTest, AStoredKeyInUseIsDestroyedByItsLastUser) {
  auto k = NewKey("signer", "ed25519");
  std::string id;
  {
    std::lock_guard<std::mutex> lock(k->mu);
    id = k->versions[1].token_object;
  }
  // SoftHSM2 2.6.1 cannot wrap an Ed25519 key, so the version must be a token object.
  ASSERT_FALSE(id.empty()) << "the ed25519 version was not made a token object";
  std::shared_ptr<TokenKey> in_flight = Use(*k);
  ASSERT_NE(in_flight, nullptr);
  const CK_OBJECT_HANDLE handle = in_flight->handle();
  auto sign = [&] { return token_->SignWith(handle, CKM_EDDSA, nullptr, Bytes("message")).ok(); };
  ASSERT_TRUE(sign());

  Delete(*k);
  EXPECT_TRUE(sign()) << "the in-flight request's token object was destroyed under it";
  EXPECT_TRUE(token_->FindStoredKey(Bytes(id)).ok());
  store_->Sweep(storage_);  // the version is gone from storage, but the object is in use
  EXPECT_TRUE(sign());
  EXPECT_TRUE(token_->FindStoredKey(Bytes(id)).ok());

  in_flight.reset();
  EXPECT_TRUE(absl::IsNotFound(token_->FindStoredKey(Bytes(id)).status()));
  auto record = storage_.Get(RegistryKey(id));
  ASSERT_TRUE(record.ok());
  EXPECT_TRUE(record->has_value()) << "the record stays until the sweep sees the object gone";
  store_->Sweep(storage_);
  record = storage_.Get(RegistryKey(id));
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->has_value());
}

TEST_F(TransitKeyStoreTest, AnUnusedStoredKeyGoesWithTheDelete) {
  auto k = NewKey("signer", "ed25519");
  std::string id;
  {
    std::lock_guard<std::mutex> lock(k->mu);
    id = k->versions[1].token_object;
  }
  // SoftHSM2 2.6.1 cannot wrap an Ed25519 key, so the version must be a token object.
  ASSERT_FALSE(id.empty()) << "the ed25519 version was not made a token object";
  ASSERT_NE(Use(*k), nullptr);  // found once, then let go of
  Delete(*k);
  EXPECT_TRUE(absl::IsNotFound(token_->FindStoredKey(Bytes(id)).status()));
  auto record = storage_.Get(RegistryKey(id));
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->has_value());
}

// Evicted from the cache (cache-config), a key's session objects are destroyed; loaded again,
// it gets new ones.
TEST_F(TransitKeyStoreTest, EvictionDestroysTheObjectsOfKeysNobodyUses) {
  ASSERT_TRUE(store_->SetCacheSize(storage_, engines::transit::kMinCacheSize).ok());
  std::vector<CK_OBJECT_HANDLE> handles;
  for (int i = 0; i < engines::transit::kMinCacheSize + 1; ++i) {
    auto k = NewKey("k" + std::to_string(i), "aes256-gcm96");
    handles.push_back(Use(*k)->handle());
  }
  EXPECT_FALSE(Encrypts(handles[0])) << "the least recently used key was not evicted";
  for (size_t i = 1; i < handles.size(); ++i) EXPECT_TRUE(Encrypts(handles[i])) << i;
  auto again = store_->Find(storage_, "k0");
  ASSERT_TRUE(again.ok() && *again != nullptr);
  EXPECT_TRUE(Encrypts(Use(**again)->handle()));
}

// ---- Vault's "vault:v<N>:<base64>" ------------------------------------------------------------

TEST(TransitVersionedTest, ParsesVaultsFormatWithVaultsErrors) {
  using engines::transit::ParseVersioned;
  auto ok = ParseVersioned("vault:v12:aGVsbG8=", "ciphertext");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->first, 12);
  EXPECT_EQ(ok->second, "hello");
  EXPECT_EQ(ParseVersioned("vault:v0:aGVsbG8=", "ciphertext")->first, 1);  // v0 reads as v1
  EXPECT_EQ(ParseVersioned("vault:v1:", "ciphertext")->second, "");
  EXPECT_EQ(ParseVersioned("vault:v3:aGk_", "signature", /*url_safe=*/true)->second, "hi?");
  auto err = [](std::string_view text) {
    return std::string(ParseVersioned(text, "ciphertext").status().message());
  };
  EXPECT_EQ(err("vaul:v1:aGk="), "invalid ciphertext: no prefix");
  EXPECT_EQ(err(""), "invalid ciphertext: no prefix");
  EXPECT_EQ(err("vault:"), "invalid ciphertext: wrong number of fields");
  EXPECT_EQ(err("vault:v1"), "invalid ciphertext: wrong number of fields");
  for (const char* bad : {"vault::aGk=", "vault:v:aGk=", "vault:1:aGk=", "vault:vx:aGk=",
                          "vault:v-1:aGk=", "vault:v99999999999999999999:aGk="}) {
    EXPECT_EQ(err(bad), "invalid ciphertext: version number could not be decoded") << bad;
  }
  EXPECT_EQ(err("vault:v1:!!"), "invalid ciphertext: could not decode base64");
  EXPECT_EQ(err("vault:v1:aGk=:aGk="), "invalid ciphertext: could not decode base64");
}

// ---- nonces -----------------------------------------------------------------------------------

TEST(TransitNonceTest, EveryNonceIsHandedOutOnceAcrossThreadsAndDraws) {
  constexpr int kThreads = 8;
  constexpr size_t kPerThread = kNoncesPerDraw * 40 + 7;  // many draws, one partly used
  std::vector<std::vector<Nonce>> drawn(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&drawn, t] {
      for (size_t i = 0; i < kPerThread; ++i) {
        Nonce n{};
        if (!NextNonce(n).ok()) return;
        drawn[static_cast<size_t>(t)].push_back(n);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<Nonce> distinct;
  for (const auto& d : drawn) {
    ASSERT_EQ(d.size(), kPerThread);
    distinct.insert(d.begin(), d.end());
  }
  EXPECT_EQ(distinct.size(), kThreads * kPerThread);
  EXPECT_EQ(distinct.count(Nonce{}), 0u) << "an all-zero nonce: a slot handed out after cleansing";
}

// A forked child must not hand out the rest of its parent's block: parent and child would then
// encrypt with the same nonces.
TEST(TransitNonceTest, AForkedChildDrawsItsOwnBlock) {
  Nonce first{};
  ASSERT_TRUE(NextNonce(first).ok());  // this thread now holds a partly used block
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Nonce child{};
    const bool ok = NextNonce(child).ok() &&
                    write(fds[1], child.data(), child.size()) == static_cast<ssize_t>(child.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  Nonce from_child{};
  const ssize_t got = read(fds[0], from_child.data(), from_child.size());
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, static_cast<ssize_t>(from_child.size()));
  Nonce next{};
  ASSERT_TRUE(NextNonce(next).ok());
  EXPECT_NE(from_child, next) << "the child handed out its parent's next nonce";
  EXPECT_NE(from_child, first);
}

}  // namespace
}  // namespace strongroom::testing
