// Tests for the PKCS#11 operations Transit's newer key types need (hsm/stored_keys.cc and the
// mechanism errors of hsm/transit_keys.cc), against a real SoftHSM2 2.6.1 token: a fresh token
// directory per test (SoftHsmToken).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "hsm/token.h"
#include "tests/support/softhsm_token.h"

namespace strongroom::hsm {
namespace {

using test_support::SoftHsmToken;
using ::testing::HasSubstr;

// PKCS#11 3.0 numbers, absent from the pkcs11.h of Debian 12's p11-kit.
constexpr CK_MECHANISM_TYPE kSha3_256 = 0x2B0;
constexpr CK_MECHANISM_TYPE kSha3_256Hmac = 0x2B1;
constexpr CK_RSA_PKCS_MGF_TYPE kMgf1Sha3_256 = 0x7;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }
std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey FromSpki(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return Pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

bool Ed25519Verifies(const std::string& spki, const std::vector<uint8_t>& sig,
                     const std::vector<uint8_t>& msg) {
  Pkey key = FromSpki(spki);
  if (!key) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, key.get()) == 1 &&
                  EVP_DigestVerify(md, sig.data(), sig.size(), msg.data(), msg.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

// RSA-OAEP encryption by OpenSSL with the public key alone (what any Vault client can do).
std::vector<uint8_t> OpensslOaepEncrypt(const std::string& spki, const EVP_MD* md,
                                        const std::vector<uint8_t>& plaintext) {
  Pkey key = FromSpki(spki);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key.get(), nullptr);
  std::vector<uint8_t> out(1024);
  size_t len = out.size();
  const bool ok = ctx != nullptr && EVP_PKEY_encrypt_init(ctx) == 1 &&
                  EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
                  EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) == 1 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                  EVP_PKEY_encrypt(ctx, out.data(), &len, plaintext.data(), plaintext.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  EXPECT_TRUE(ok);
  out.resize(ok ? len : 0);
  return out;
}

class StoredKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = SoftHsmToken::Create("sr-stored", "user-pin-1234", "so-pin-5678");
    ASSERT_TRUE(t.ok()) << t.status();
    softhsm_ = std::move(*t);
    Reopen();
  }
  void TearDown() override { token_.reset(); }
  void Reopen() {
    token_.reset();  // C_Finalize first: one module per process
    auto token =
        Token::Open(TokenConfig{softhsm_->lib(), softhsm_->label(), std::nullopt, softhsm_->pin()});
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = std::move(*token);
  }

  std::unique_ptr<SoftHsmToken> softhsm_;
  std::unique_ptr<Token> token_;
};

TEST_F(StoredKeysTest, Ed25519PairIsANonExtractableTokenObjectThatSignsAndSurvivesReopen) {
  using T = Token::PairType;
  const std::vector<uint8_t> id = Bytes("transit-ed-0001");
  auto spki = token_->GenerateStoredPair(T::kEd25519, id, "strongroom-transit:m:ed:v1");
  ASSERT_TRUE(spki.ok()) << spki.status();
  auto key = token_->FindStoredKey(id);
  ASSERT_TRUE(key.ok()) << key.status();
  auto attrs = token_->GetKeyAttributes(*key);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(attrs->object_class, CKO_PRIVATE_KEY);
  EXPECT_EQ(attrs->key_type, CKK_EC_EDWARDS);
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_TRUE(attrs->sign);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_FALSE(attrs->unwrap);

  // A KEK cannot wrap it out (it is not extractable), whatever the mechanism allows.
  auto kek = token_->GenerateKek("kek");
  ASSERT_TRUE(kek.ok()) << kek.status();
  {
    auto lease = token_->Acquire();
    ASSERT_TRUE(lease.ok());
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    CK_ULONG len = 0;
    EXPECT_NE(lease->fn()->C_WrapKey(lease->handle(), &wrap, *kek, *key, nullptr, &len), CKR_OK);
  }

  const std::vector<uint8_t> msg = Bytes("pay tenant 7 the sum of 100 EUR");
  auto sig = token_->SignWith(*key, CKM_EDDSA, nullptr, msg);
  ASSERT_TRUE(sig.ok()) << sig.status();
  ASSERT_EQ(sig->size(), 64u);
  EXPECT_TRUE(Ed25519Verifies(*spki, *sig, msg));
  EXPECT_FALSE(Ed25519Verifies(*spki, *sig, Bytes("pay tenant 7 the sum of 999 EUR")));

  // The object is the key: after the token is closed and opened again it still signs, for the
  // same public key.
  Reopen();
  auto again = token_->FindStoredKey(id);
  ASSERT_TRUE(again.ok()) << again.status();
  auto sig2 = token_->SignWith(*again, CKM_EDDSA, nullptr, msg);
  ASSERT_TRUE(sig2.ok()) << sig2.status();
  EXPECT_TRUE(Ed25519Verifies(*spki, *sig2, msg));
}

TEST_F(StoredKeysTest, IdsAreUniqueAndDestroyRemovesOnlyTheNamedKey) {
  using T = Token::PairType;
  const std::vector<uint8_t> a = Bytes("id-a"), b = Bytes("id-b");
  ASSERT_TRUE(token_->GenerateStoredPair(T::kEd25519, a, "strongroom-transit:m1:k:v1").ok());
  ASSERT_TRUE(token_->GenerateStoredPair(T::kEd25519, b, "strongroom-transit:m1:k:v2").ok());
  auto dup = token_->GenerateStoredPair(T::kEd25519, a, "strongroom-transit:m1:k:v3");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists) << dup.status();

  auto listed = token_->ListStoredKeys("strongroom-transit:m1:");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);

  ASSERT_TRUE(token_->DestroyStoredKey(a).ok());
  EXPECT_EQ(token_->FindStoredKey(a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(token_->DestroyStoredKey(a).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(token_->FindStoredKey(b).ok());
  // Destruction is durable: a reopened token does not have it either.
  Reopen();
  EXPECT_EQ(token_->FindStoredKey(a).status().code(), absl::StatusCode::kNotFound);
  auto after = token_->ListStoredKeys("strongroom-transit:m1:");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, b);
  EXPECT_EQ((*after)[0].label, "strongroom-transit:m1:k:v2");
}

TEST_F(StoredKeysTest, ListFiltersByLabelPrefix) {
  using T = Token::PairType;
  ASSERT_TRUE(token_->GenerateStoredPair(T::kEd25519, Bytes("1"), "strongroom-transit:m1:a").ok());
  ASSERT_TRUE(token_->GenerateStoredPair(T::kEd25519, Bytes("2"), "strongroom-transit:m2:a").ok());
  ASSERT_TRUE(token_->GenerateSigningKey("audit").ok());  // a private key of another kind
  auto m1 = token_->ListStoredKeys("strongroom-transit:m1:");
  ASSERT_TRUE(m1.ok());
  ASSERT_EQ(m1->size(), 1u);
  EXPECT_EQ((*m1)[0].id, Bytes("1"));
  auto all = token_->ListStoredKeys("strongroom-transit:");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto none = token_->ListStoredKeys("nothing-like-this");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(StoredKeysTest, BadIdsAndLabelsAreRefusedBeforeTheToken) {
  using T = Token::PairType;
  EXPECT_EQ(token_->GenerateStoredPair(T::kEd25519, {}, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      token_->GenerateStoredPair(T::kEd25519, std::vector<uint8_t>(65, 1), "x").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->GenerateStoredPair(T::kEd25519, Bytes("id"), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      token_->GenerateStoredPair(T::kEd25519, Bytes("id"), std::string(257, 'l')).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->FindStoredKey({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->DestroyStoredKey({}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->FindStoredKey(Bytes("never made")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoredKeysTest, RsaOaepRunsInTheTokenWithSha1AndSoftHsmRefusesSha256Clearly) {
  using T = Token::PairType;
  auto kek = token_->GenerateKek("kek");
  ASSERT_TRUE(kek.ok());
  auto pair = token_->GenerateWrappedPair(*kek, T::kRsa2048);
  ASSERT_TRUE(pair.ok()) << pair.status();
  auto priv = token_->UnwrapPrivateKey(*kek, pair->private_blob, T::kRsa2048);
  ASSERT_TRUE(priv.ok()) << priv.status();
  const std::vector<uint8_t> pt = Bytes("a data key, 32 bytes long......!");

  // SHA-1: encryption and decryption both inside the token.
  auto ct = token_->RsaOaepEncrypt(pair->public_spki, CKM_SHA_1, pt);
  ASSERT_TRUE(ct.ok()) << ct.status();
  EXPECT_EQ(ct->size(), 256u);
  auto back = token_->RsaOaepDecrypt(*priv, CKM_SHA_1, *ct);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, pt);
  // A client's ciphertext made with the public key alone decrypts too.
  auto theirs = token_->RsaOaepDecrypt(*priv, CKM_SHA_1,
                                       OpensslOaepEncrypt(pair->public_spki, EVP_sha1(), pt));
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(*theirs, pt);
  // Altered ciphertexts do not.
  auto bad = *ct;
  bad[100] ^= 1;
  auto refused = token_->RsaOaepDecrypt(*priv, CKM_SHA_1, bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(Msg(refused.status()), "RSA-OAEP decryption failed");
  // The session is usable after the failure (the next call works).
  EXPECT_TRUE(token_->RsaOaepDecrypt(*priv, CKM_SHA_1, *ct).ok());

  // SHA-256 (Vault's choice): SoftHSM2 2.6.1 refuses the parameters, and says so.
  auto enc256 = token_->RsaOaepEncrypt(pair->public_spki, CKM_SHA256, pt);
  EXPECT_EQ(enc256.status().code(), absl::StatusCode::kUnimplemented) << enc256.status();
  EXPECT_THAT(Msg(enc256.status()), HasSubstr("RSA-OAEP with SHA-256"));
  EXPECT_THAT(Msg(enc256.status()), HasSubstr("CKR_ARGUMENTS_BAD"));
  auto dec256 = token_->RsaOaepDecrypt(*priv, CKM_SHA256,
                                       OpensslOaepEncrypt(pair->public_spki, EVP_sha256(), pt));
  EXPECT_EQ(dec256.status().code(), absl::StatusCode::kUnimplemented) << dec256.status();

  // Limits: plaintext longer than OAEP allows, other hashes, keys that are not RSA.
  EXPECT_EQ(token_->RsaOaepEncrypt(pair->public_spki, CKM_SHA_1, std::vector<uint8_t>(215, 7))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      token_->RsaOaepEncrypt(pair->public_spki, CKM_SHA_1, std::vector<uint8_t>(214, 7)).ok());
  EXPECT_EQ(token_->RsaOaepEncrypt(pair->public_spki, CKM_SHA512, pt).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto ec = token_->GenerateWrappedPair(*kek, T::kEcP256);
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(token_->RsaOaepEncrypt(ec->public_spki, CKM_SHA_1, pt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->RsaOaepEncrypt("not der", CKM_SHA_1, pt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->RsaOaepDecrypt(*priv, CKM_SHA_1, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StoredKeysTest, StoredRsaPairDecryptsInsideToo) {
  auto spki = token_->GenerateStoredPair(Token::PairType::kRsa2048, Bytes("rsa-1"), "rsa");
  ASSERT_TRUE(spki.ok()) << spki.status();
  auto key = token_->FindStoredKey(Bytes("rsa-1"));
  ASSERT_TRUE(key.ok());
  const std::vector<uint8_t> pt = Bytes("hello");
  auto back = token_->RsaOaepDecrypt(*key, CKM_SHA_1, OpensslOaepEncrypt(*spki, EVP_sha1(), pt));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, pt);
}

TEST_F(StoredKeysTest, MechanismQueriesAndRefusalsNameWhatTheTokenLacks) {
  EXPECT_TRUE(token_->HasMechanism(CKM_SHA256_HMAC, CKF_SIGN));
  EXPECT_TRUE(token_->HasMechanism(CKM_SHA_1_HMAC, CKF_SIGN | CKF_VERIFY));
  EXPECT_TRUE(token_->HasMechanism(CKM_EDDSA, CKF_SIGN));
  EXPECT_FALSE(token_->HasMechanism(CKM_EDDSA, CKF_ENCRYPT));
  // SoftHSM2 2.6.1 has no SHA-3 at all.
  EXPECT_FALSE(token_->HasMechanism(kSha3_256, CKF_DIGEST));
  EXPECT_FALSE(token_->HasMechanism(kSha3_256Hmac, CKF_SIGN));
  EXPECT_FALSE(token_->HasMechanism(kSha3_256Hmac, CKF_SIGN));  // cached answer, same

  auto kek = token_->GenerateKek("kek");
  ASSERT_TRUE(kek.ok());
  auto blob = token_->GenerateWrappedKey(*kek, CKK_GENERIC_SECRET, 64);
  ASSERT_TRUE(blob.ok());
  auto mac_key = token_->UnwrapKey(*kek, *blob, CKK_GENERIC_SECRET, 64);
  ASSERT_TRUE(mac_key.ok());
  const std::vector<uint8_t> data = Bytes("message");
  auto sha1 = token_->Hmac(*mac_key, CKM_SHA_1_HMAC, data);
  ASSERT_TRUE(sha1.ok()) << sha1.status();
  EXPECT_EQ(sha1->size(), 20u);
  EXPECT_EQ(*token_->Hmac(*mac_key, CKM_SHA_1_HMAC, data), *sha1);
  auto sha3 = token_->Hmac(*mac_key, kSha3_256Hmac, data);
  EXPECT_EQ(sha3.status().code(), absl::StatusCode::kUnimplemented) << sha3.status();
  EXPECT_THAT(Msg(sha3.status()), HasSubstr("CKR_MECHANISM_INVALID"));
  // The session that saw the refusal is fine for the next caller.
  EXPECT_TRUE(token_->Hmac(*mac_key, CKM_SHA256_HMAC, data).ok());

  // RSA-PSS with a SHA-3 hash: refused by the token's parameter check.
  auto pair = token_->GenerateWrappedPair(*kek, Token::PairType::kRsa2048);
  ASSERT_TRUE(pair.ok());
  auto priv = token_->UnwrapPrivateKey(*kek, pair->private_blob, Token::PairType::kRsa2048);
  ASSERT_TRUE(priv.ok());
  CK_RSA_PKCS_PSS_PARAMS pss{};
  pss.hash_alg = kSha3_256;
  pss.mgf = kMgf1Sha3_256;
  pss.s_len = 32;
  auto refused = token_->SignWith(*priv, CKM_RSA_PKCS_PSS, &pss, std::vector<uint8_t>(32, 1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnimplemented) << refused.status();
  pss.hash_alg = CKM_SHA_1;
  pss.mgf = CKG_MGF1_SHA1;
  pss.s_len = 20;
  EXPECT_TRUE(token_->SignWith(*priv, CKM_RSA_PKCS_PSS, &pss, std::vector<uint8_t>(20, 1)).ok());
}

}  // namespace
}  // namespace strongroom::hsm
