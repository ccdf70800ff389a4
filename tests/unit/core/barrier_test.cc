#include "appliance/core/barrier.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "appliance/core/keyring.h"
#include "appliance/core/shamir.h"
#include "appliance/storage/memory_storage.h"

namespace strongroom::core {
namespace {

TEST(Keyring, SerializeParseRoundTripAndRotation) {
  auto k = Keyring::Generate(1000);
  ASSERT_TRUE(k.ok());
  auto r = k->Rotated(2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Active().term, 2u);
  SecureBytes bytes = r->Serialize();
  auto parsed = Keyring::Parse(bytes.span());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Active().term, 2u);
  ASSERT_NE(parsed->Find(1), nullptr);
  EXPECT_TRUE(parsed->Find(1)->key.Equals(k->Active().key.span()));
  EXPECT_EQ(parsed->Find(2)->install_unix_ns, 2000);
  EXPECT_FALSE(r->Find(1)->key.Equals(r->Find(2)->key.span()));
}

TEST(Keyring, RejectsMalformedBlobs) {
  auto k = Keyring::Generate(1);
  SecureBytes bytes = k->Serialize();
  EXPECT_FALSE(Keyring::Parse(std::span<const uint8_t>(bytes.data(), bytes.size() - 1)).ok());
  bytes.data()[0] = 'X';
  EXPECT_FALSE(Keyring::Parse(bytes.span()).ok());
  EXPECT_FALSE(Keyring::Parse({}).ok());
}

class BarrierTest : public ::testing::Test {
 protected:
  void SetUp() override { b_.Unseal(std::move(*Keyring::Generate(1))); }
  storage::MemoryStorage phys_;
  Barrier b_{&phys_};
};

// Submit seals like Apply (ciphertext bound to the path below, plaintext through GetLatest), and
// a sealed barrier refuses it without reaching the store.
TEST_F(BarrierTest, SubmitSealsValuesAndGetLatestOpensThem) {
  std::shared_ptr<storage::PendingWrite> w =
      b_.Submit({storage::BatchOp::Put("s/k", "plaintext-value"), storage::BatchOp::Delete("s/x")});
  ASSERT_TRUE(w->Wait().ok());
  std::string stored = *phys_.Get("s/k").value();
  EXPECT_EQ(stored.find("plaintext-value"), std::string::npos);
  EXPECT_EQ(*b_.GetLatest("s/k").value(), "plaintext-value");
  EXPECT_FALSE(b_.GetLatest("s/none").value().has_value());
  ASSERT_TRUE(phys_.Put("s/moved", stored).ok());
  EXPECT_EQ(b_.GetLatest("s/moved").status().code(), absl::StatusCode::kDataLoss);
  b_.Seal();
  EXPECT_EQ(b_.Submit({storage::BatchOp::Put("s/k2", "v")})->Wait().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(phys_.Get("s/k2").value().has_value());
  EXPECT_EQ(b_.GetLatest("s/k").status().code(), absl::StatusCode::kUnavailable);
}

// The nonce (bytes 5..16 of a stored value) of each encryption is fresh: none repeats across
// threads that each draw from their own pool of DRBG output.
TEST_F(BarrierTest, NoncesNeverRepeatAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kEach = 1000;  // several pool refills per thread
  std::vector<std::vector<std::string>> nonces(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto c = b_.Encrypt("p", "v");
        ASSERT_TRUE(c.ok());
        nonces[t].push_back(c->substr(5, 12));
      }
    });
  }
  for (auto& t : ts) t.join();
  std::set<std::string> all;
  for (const auto& v : nonces) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
}

// A forked child never reuses the nonces its parent had drawn but not used yet. (Its parent's
// keys do not cross the fork: they live in pages a child does not get. So the child seals under
// a keyring of its own; the nonce pool is per thread, and the child's thread is the parent's.)
TEST_F(BarrierTest, AForkedChildDrawsNoncesOfItsOwn) {
  ASSERT_TRUE(b_.Encrypt("p", "v").ok());  // this thread's pool is filled
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    storage::MemoryStorage phys;
    Barrier own(&phys);
    own.Unseal(std::move(*Keyring::Generate(1)));
    auto c = own.Encrypt("p", "v");
    const std::string n = c.ok() ? c->substr(5, 12) : std::string(12, '\0');
    _exit(write(fds[1], n.data(), n.size()) == 12 ? 0 : 1);
  }
  close(fds[1]);
  auto mine = b_.Encrypt("p", "v");
  ASSERT_TRUE(mine.ok());
  std::string child(12, '\0');
  const ssize_t got = read(fds[0], child.data(), child.size());
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_EQ(got, 12) << "child wait status " << status;
  EXPECT_NE(child, mine->substr(5, 12));
  EXPECT_NE(child, std::string(12, '\0'));
}

TEST_F(BarrierTest, EncryptsValuesBoundToTheirPath) {
  ASSERT_TRUE(b_.Put("a/b", "plaintext-value").ok());
  std::string stored = *phys_.Get("a/b").value();
  EXPECT_EQ(stored.find("plaintext-value"), std::string::npos);
  EXPECT_EQ(stored.size(), 1 + 4 + 12 + 15 + 16u);
  EXPECT_EQ(*b_.Get("a/b").value(), "plaintext-value");
  // Moving the ciphertext to another path does not decrypt (path is the associated data).
  ASSERT_TRUE(phys_.Put("a/c", stored).ok());
  EXPECT_EQ(b_.Get("a/c").status().code(), absl::StatusCode::kDataLoss);
  // Any flipped bit fails authentication.
  for (size_t i = 0; i < stored.size(); ++i) {
    std::string t = stored;
    t[i] = static_cast<char>(t[i] ^ 0x01);
    ASSERT_TRUE(phys_.Put("a/b", t).ok());
    EXPECT_FALSE(b_.Get("a/b").ok()) << i;
  }
}

TEST_F(BarrierTest, SealedRefusesEverything) {
  ASSERT_TRUE(b_.Put("k", "v").ok());
  b_.Seal();
  EXPECT_TRUE(b_.sealed());
  EXPECT_EQ(b_.Get("k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b_.Put("k", "v").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b_.List("").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b_.Delete("k").code(), absl::StatusCode::kUnavailable);
}

TEST_F(BarrierTest, RotationKeepsOldTermsReadable) {
  ASSERT_TRUE(b_.Put("old", "1").ok());
  auto next = b_.CopyKeyring()->Rotated(5);
  ASSERT_TRUE(next.ok());
  b_.Install(std::move(*next));
  ASSERT_TRUE(b_.Put("new", "2").ok());
  EXPECT_EQ(b_.Status()->term, 2u);
  EXPECT_EQ(*b_.Get("old").value(), "1");
  EXPECT_EQ(*b_.Get("new").value(), "2");
  EXPECT_EQ(static_cast<uint8_t>((*phys_.Get("new").value())[4]), 2);
}

TEST(Shamir, SplitCombineAnyThreshold) {
  std::vector<uint8_t> secret(32);
  for (size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<uint8_t>(i * 7 + 1);
  auto shares = ShamirSplit(secret, 5, 3);
  ASSERT_TRUE(shares.ok());
  ASSERT_EQ(shares->size(), 5u);
  for (const auto& s : *shares) EXPECT_EQ(s.size(), 33u);
  auto got = ShamirCombine({(*shares)[4], (*shares)[0], (*shares)[2]});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->Equals(secret));
  auto two = ShamirCombine({(*shares)[1], (*shares)[3]});
  ASSERT_TRUE(two.ok());
  EXPECT_FALSE(two->Equals(secret));
  EXPECT_FALSE(ShamirCombine({(*shares)[1], (*shares)[1]}).ok());
  EXPECT_FALSE(ShamirSplit(secret, 3, 1).ok());
  EXPECT_FALSE(ShamirSplit(secret, 2, 3).ok());
  EXPECT_FALSE(ShamirSplit(secret, 256, 3).ok());
  auto one = ShamirSplit(secret, 1, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(ShamirCombine(*one)->Equals(secret));
}

}  // namespace
}  // namespace strongroom::core
