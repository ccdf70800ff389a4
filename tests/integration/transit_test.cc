// The Transit engine against the real daemon: Vault's endpoints, shapes and error texts, keys
// generated in the SoftHSM2 token and persisted only wrapped, restart, rotation (manual, automatic
// and at the nonce bound), batches with a bad item.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "hsm/rv.h"
#include "hsm/token.h"
#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

std::string B64(const std::string& s) { return absl::Base64Escape(s); }
std::string Unb64(const std::string& s) {
  std::string out;
  EXPECT_TRUE(absl::Base64Unescape(s, &out)) << s;
  return out;
}

class TransitTest : public ::testing::Test {
 protected:
  explicit TransitTest(std::string extra_top = "") : d_(MakeOptions(std::move(extra_top))) {}
  static Daemon::Options MakeOptions(std::string extra_top) {
    Daemon::Options o;
    o.extra_top = std::move(extra_top);
    return o;
  }
  void SetUp() override {
    ASSERT_TRUE(d_.Start()) << d_.Log();
    d_.Init();
    ASSERT_EQ(d_.Root("POST", "/v1/sys/mounts/transit", {{"type", "transit"}}).status, 204)
        << d_.Log();
  }
  HttpResponse Post(const std::string& path, const json& body = json::object()) {
    return d_.Root("POST", "/v1/transit/" + path, body);
  }
  static std::string Error(const HttpResponse& r) {
    json j = r.Json();
    return j.contains("errors") && !j["errors"].empty() ? j["errors"][0].get<std::string>() : "";
  }
  std::string Encrypt(const std::string& key, const std::string& plaintext, json extra = {}) {
    json body = {{"plaintext", B64(plaintext)}};
    if (extra.is_object()) body.update(extra);
    auto r = Post("encrypt/" + key, body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Json()["data"]["ciphertext"];
  }
  HttpResponse Decrypt(const std::string& key, const std::string& ct, json extra = {}) {
    json body = {{"ciphertext", ct}};
    if (extra.is_object()) body.update(extra);
    return Post("decrypt/" + key, body);
  }

  Daemon d_;
};

TEST_F(TransitTest, KeysHaveVaultsShapesAndLifecycle) {
  auto created = Post("keys/lobstack", {{"auto_rotate_period", "2160h"}});
  ASSERT_EQ(created.status, 200) << created.body;
  json k = created.Json()["data"];
  EXPECT_EQ(k["name"], "lobstack");
  EXPECT_EQ(k["type"], "aes256-gcm96");
  EXPECT_EQ(k["latest_version"], 1);
  EXPECT_EQ(k["min_decryption_version"], 1);
  EXPECT_EQ(k["min_encryption_version"], 0);
  EXPECT_EQ(k["exportable"], false);
  EXPECT_EQ(k["deletion_allowed"], false);
  EXPECT_EQ(k["supports_encryption"], true);
  EXPECT_EQ(k["supports_signing"], false);
  EXPECT_EQ(k["auto_rotate_period"], 90 * 24 * 3600);
  ASSERT_TRUE(k["keys"]["1"].is_number_integer());

  auto again = Post("keys/lobstack");
  EXPECT_EQ(again.status, 200);
  EXPECT_THAT(again.body, HasSubstr("key lobstack already existed"));
  ASSERT_EQ(Post("keys/agent-data", {{"type", "aes128-gcm96"}}).status, 200);
  auto hmac = Post("keys/mac", {{"type", "hmac"}, {"key_size", 64}});
  ASSERT_EQ(hmac.status, 200) << hmac.body;
  EXPECT_EQ(hmac.Json()["data"]["key_size"], 64);
  EXPECT_FALSE(hmac.Json()["data"].contains("keys"));

  auto list = d_.Root("LIST", "/v1/transit/keys");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.Json()["data"]["keys"], json({"agent-data", "lobstack", "mac"}));
  auto read = d_.Root("GET", "/v1/transit/keys/lobstack");
  EXPECT_EQ(read.Json()["data"]["latest_version"], 1);
  EXPECT_EQ(d_.Root("GET", "/v1/transit/keys/missing").status, 404);

  auto rotated = Post("keys/lobstack/rotate");
  ASSERT_EQ(rotated.status, 200);
  EXPECT_EQ(rotated.Json()["data"]["latest_version"], 2);
  EXPECT_TRUE(rotated.Json()["data"]["keys"].contains("2"));

  // Refusals, with Vault's words where Vault has them.
  auto del = d_.Root("DELETE", "/v1/transit/keys/lobstack");
  EXPECT_EQ(del.status, 400);
  EXPECT_EQ(Error(del), "error deleting policy lobstack: deletion is not allowed for this key");
  EXPECT_EQ(Error(Post("keys/x", {{"auto_rotate_period", "30m"}})),
            "auto rotate period must be 0 to disable or at least an hour");
  EXPECT_EQ(Post("keys/x", {{"exportable", true}}).status, 400);
  EXPECT_EQ(Post("keys/x", {{"derived", true}}).status, 400);
  EXPECT_THAT(Error(Post("keys/x", {{"type", "chacha20-poly1305"}})), HasSubstr("not supported"));
  EXPECT_THAT(Error(Post("keys/x", {{"type", "des"}})), HasSubstr("unknown key type"));
  EXPECT_EQ(d_.Root("GET", "/v1/transit/keys/x").status, 404);  // none of those created it
  EXPECT_EQ(Post("keys/lobstack/config", {{"exportable", true}}).status, 400);
  EXPECT_THAT(Error(d_.Root("GET", "/v1/transit/export/encryption-key/lobstack")),
              HasSubstr("never leave the PKCS#11 token"));
  EXPECT_THAT(Error(d_.Root("GET", "/v1/transit/backup/lobstack")),
              HasSubstr("never leave the PKCS#11 token"));

  ASSERT_EQ(Post("keys/agent-data/config", {{"deletion_allowed", true}}).status, 200);
  EXPECT_EQ(d_.Root("DELETE", "/v1/transit/keys/agent-data").status, 204);
  EXPECT_EQ(d_.Root("GET", "/v1/transit/keys/agent-data").status, 404);
}

TEST_F(TransitTest, EncryptDecryptRewrapAndVaultsErrors) {
  ASSERT_EQ(Post("keys/lobstack").status, 200);
  const std::string secret = "card 4111-1111-1111-1111 exp 12/30";
  const std::string ct = Encrypt("lobstack", secret);
  ASSERT_THAT(ct, StartsWith("vault:v1:"));
  EXPECT_EQ(Unb64(ct.substr(9)).size(), 12 + secret.size() + 16);  // nonce || ct || tag
  EXPECT_NE(Encrypt("lobstack", secret), ct);                      // fresh nonce each time
  auto dec = Decrypt("lobstack", ct);
  ASSERT_EQ(dec.status, 200) << dec.body;
  EXPECT_EQ(Unb64(dec.Json()["data"]["plaintext"]), secret);
  EXPECT_EQ(Unb64(Decrypt("lobstack", "vault:v0:" + ct.substr(9)).Json()["data"]["plaintext"]),
            secret);  // v0 reads as v1, as in Vault

  // Associated data binds the ciphertext.
  const std::string with_ad = Encrypt("lobstack", secret, {{"associated_data", B64("tenant-7")}});
  EXPECT_EQ(Decrypt("lobstack", with_ad, {{"associated_data", B64("tenant-7")}}).status, 200);
  auto wrong_ad = Decrypt("lobstack", with_ad, {{"associated_data", B64("tenant-8")}});
  EXPECT_EQ(wrong_ad.status, 400);
  EXPECT_EQ(Error(wrong_ad), "cipher: message authentication failed");
  EXPECT_EQ(Error(Decrypt("lobstack", with_ad)), "cipher: message authentication failed");

  // Tampering and malformed input: 400 with Vault's texts.
  std::string raw = Unb64(ct.substr(9));
  raw[14] ^= 1;
  EXPECT_EQ(Error(Decrypt("lobstack", "vault:v1:" + B64(raw))),
            "cipher: message authentication failed");
  EXPECT_EQ(Error(Decrypt("lobstack", "vault:v1:!!notbase64")),
            "invalid ciphertext: could not decode base64");
  EXPECT_EQ(Error(Decrypt("lobstack", "nope:v1:" + ct.substr(9))), "invalid ciphertext: no prefix");
  EXPECT_EQ(Error(Decrypt("lobstack", "vault:v1")), "invalid ciphertext: wrong number of fields");
  EXPECT_EQ(Error(Decrypt("lobstack", "vault:v9:" + ct.substr(9))),
            "invalid ciphertext: version is too new");
  EXPECT_EQ(Error(Post("encrypt/lobstack", {{"plaintext", "%%%"}})),
            "failed to base64-decode plaintext");
  EXPECT_EQ(Error(Decrypt("nokey", ct)), "encryption key not found");
  ASSERT_EQ(Post("keys/other").status, 200);
  EXPECT_EQ(Error(Decrypt("other", ct)), "cipher: message authentication failed");  // key-bound

  // Rotation: new ciphertexts say v2, v1 still decrypts, rewrap moves it to v2.
  ASSERT_EQ(Post("keys/lobstack/rotate").status, 200);
  const std::string ct2 = Encrypt("lobstack", secret);
  EXPECT_THAT(ct2, StartsWith("vault:v2:"));
  EXPECT_EQ(Decrypt("lobstack", ct).status, 200);
  auto rewrapped = Post("rewrap/lobstack", {{"ciphertext", ct}});
  ASSERT_EQ(rewrapped.status, 200) << rewrapped.body;
  const std::string ct1to2 = rewrapped.Json()["data"]["ciphertext"];
  EXPECT_THAT(ct1to2, StartsWith("vault:v2:"));
  EXPECT_EQ(rewrapped.Json()["data"]["key_version"], 2);
  EXPECT_EQ(Unb64(Decrypt("lobstack", ct1to2).Json()["data"]["plaintext"]), secret);
  EXPECT_THAT(Encrypt("lobstack", "x", {{"key_version", 1}}), StartsWith("vault:v1:"));

  // min_decryption_version, then trim.
  ASSERT_EQ(Post("keys/lobstack/config", {{"min_decryption_version", 2}}).status, 200);
  EXPECT_EQ(Error(Decrypt("lobstack", ct)),
            "ciphertext or signature version is disallowed by policy (too old)");
  ASSERT_EQ(Post("keys/lobstack/config", {{"min_encryption_version", 2}}).status, 200);
  auto trimmed = Post("keys/lobstack/trim", {{"min_available_version", 2}});
  ASSERT_EQ(trimmed.status, 200) << trimmed.body;
  EXPECT_FALSE(trimmed.Json()["data"]["keys"].contains("1"));
  EXPECT_EQ(Decrypt("lobstack", ct2).status, 200);

  // Nothing the clients sent appears in the broker's log.
  EXPECT_THAT(d_.Log(), Not(HasSubstr(secret)));
  EXPECT_THAT(d_.Log(), Not(HasSubstr(B64(secret))));
}

// GCM nonces are random and drawn per broker thread in blocks (transit_crypto.h): concurrent
// encryptions under one key never share one.
TEST_F(TransitTest, ConcurrentEncryptionsNeverShareANonce) {
  ASSERT_EQ(Post("keys/hot").status, 200);
  constexpr int kThreads = 6;
  constexpr int kEach = 150;  // more than a block (64) per broker thread
  std::vector<std::vector<std::string>> cts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      json batch = json::array();
      for (int i = 0; i < kEach; ++i) {
        // Half as single requests, half in batches: both paths draw nonces.
        if (i % 2 == 0) {
          auto r = Post("encrypt/hot", {{"plaintext", B64("same plaintext")}});
          if (r.status != 200) return;
          cts[static_cast<size_t>(t)].push_back(r.Json()["data"]["ciphertext"]);
        } else {
          batch.push_back({{"plaintext", B64("same plaintext")}});
        }
      }
      auto r = Post("encrypt/hot", {{"batch_input", batch}});
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) return;
      const json body = r.Json();  // kept: the loop below refers into it
      for (const auto& item : body["data"]["batch_results"]) {
        cts[static_cast<size_t>(t)].push_back(item["ciphertext"]);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> nonces;
  size_t total = 0;
  for (const auto& per_thread : cts) {
    EXPECT_EQ(per_thread.size(), static_cast<size_t>(kEach));
    for (const auto& ct : per_thread) {
      ASSERT_THAT(ct, StartsWith("vault:v1:"));
      nonces.insert(Unb64(ct.substr(9)).substr(0, 12));
      ++total;
    }
  }
  EXPECT_EQ(nonces.size(), total);
  for (size_t t = 0; t < cts.size(); ++t) {
    if (cts[t].empty()) continue;
    auto dec = Decrypt("hot", cts[t].back());
    ASSERT_EQ(dec.status, 200) << dec.body;
    EXPECT_EQ(Unb64(dec.Json()["data"]["plaintext"]), "same plaintext");
  }
}

// Deleting a key while other requests encrypt and decrypt with it: each of those finishes with
// the key object it started with (or finds the key gone, or recreates it by upsert), never
// with an internal error from a key object destroyed under it
// (tests/unit/engines/transit_store_test.cc holds a use open deterministically).
TEST_F(TransitTest, DeletesDuringEncryptionsNeverFailThem) {
  ASSERT_EQ(Post("keys/churn").status, 200);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        auto enc = Post("encrypt/churn", {{"plaintext", B64("payload")}});
        HttpResponse dec;
        if (enc.status == 200) dec = Decrypt("churn", enc.Json()["data"]["ciphertext"]);
        // A request that took the key just before its delete may find it deleted, and a decrypt
        // may meet a newer key of the same name (400s), but none may meet a broken key (500).
        const bool broken = enc.status >= 500 || dec.status >= 500 ||
                            (enc.status == 400 && Error(enc) != "encryption key not found");
        if (broken) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(enc.status != 200 ? enc.body : dec.body);
        } else if (dec.status == 200) {
          ++ok;
        }
      }
    });
  }
  for (int i = 0; i < 25; ++i) {
    // Encrypt's upsert may have recreated the key with deletion not allowed: allow it again.
    Post("keys/churn/config", {{"deletion_allowed", true}});
    const int status = d_.Root("DELETE", "/v1/transit/keys/churn").status;
    EXPECT_TRUE(status == 204 || status == 400) << status;
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_THAT(d_.Log(), Not(HasSubstr("HANDLE_INVALID")));
}

TEST_F(TransitTest, BatchesCarryPerItemErrors) {
  ASSERT_EQ(Post("keys/agent-data").status, 200);
  auto enc =
      Post("encrypt/agent-data",
           {{"batch_input", json::array({{{"plaintext", B64("one")}, {"reference", "a"}},
                                         {{"plaintext", "***"}, {"reference", "b"}},
                                         {{"plaintext", B64("three")}, {"reference", "c"}}})}});
  EXPECT_EQ(enc.status, 400) << enc.body;
  json results = enc.Json()["data"]["batch_results"];
  ASSERT_EQ(results.size(), 3u) << enc.body;
  EXPECT_THAT(results[0]["ciphertext"].get<std::string>(), StartsWith("vault:v1:"));
  EXPECT_EQ(results[0]["reference"], "a");
  EXPECT_EQ(results[1]["error"], "failed to base64-decode plaintext");
  EXPECT_EQ(results[1]["reference"], "b");
  EXPECT_FALSE(results[1].contains("ciphertext"));
  EXPECT_EQ(results[2]["reference"], "c");

  auto partial =
      Post("encrypt/agent-data",
           {{"partial_failure_response_code", 207},
            {"batch_input", json::array({{{"plaintext", B64("x")}}, {{"plaintext", 5}}})}});
  EXPECT_EQ(partial.status, 207) << partial.body;

  auto dec = Post("decrypt/agent-data",
                  {{"batch_input", json::array({{{"ciphertext", results[0]["ciphertext"]}},
                                                {{"ciphertext", "vault:v1:AAAA"}},
                                                {{"ciphertext", results[2]["ciphertext"]}}})}});
  EXPECT_EQ(dec.status, 400);
  json d = dec.Json()["data"]["batch_results"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(Unb64(d[0]["plaintext"]), "one");
  EXPECT_TRUE(d[1].contains("error"));
  EXPECT_EQ(Unb64(d[2]["plaintext"]), "three");

  auto ok =
      Post("encrypt/agent-data",
           {{"batch_input", json::array({{{"plaintext", B64("p")}}, {{"plaintext", B64("q")}}})}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Json()["data"]["batch_results"].size(), 2u);
}

TEST_F(TransitTest, DatakeysHmacRandomAndHash) {
  ASSERT_EQ(Post("keys/lobstack").status, 200);
  auto dk = Post("datakey/plaintext/lobstack", {{"bits", 512}});
  ASSERT_EQ(dk.status, 200) << dk.body;
  const std::string plain = Unb64(dk.Json()["data"]["plaintext"]);
  EXPECT_EQ(plain.size(), 64u);
  EXPECT_EQ(Unb64(Decrypt("lobstack", dk.Json()["data"]["ciphertext"]).Json()["data"]["plaintext"]),
            plain);
  auto wrapped = Post("datakey/wrapped/lobstack");
  ASSERT_EQ(wrapped.status, 200);
  EXPECT_FALSE(wrapped.Json()["data"].contains("plaintext"));
  EXPECT_EQ(Post("datakey/other/lobstack").status, 400);

  auto mac = Post("hmac/lobstack", {{"input", B64("payload")}});
  ASSERT_EQ(mac.status, 200) << mac.body;
  const std::string h = mac.Json()["data"]["hmac"];
  EXPECT_THAT(h, StartsWith("vault:v1:"));
  EXPECT_EQ(Unb64(h.substr(9)).size(), 32u);
  EXPECT_EQ(
      Post("verify/lobstack", {{"input", B64("payload")}, {"hmac", h}}).Json()["data"]["valid"],
      true);
  EXPECT_EQ(
      Post("verify/lobstack", {{"input", B64("payloaD")}, {"hmac", h}}).Json()["data"]["valid"],
      false);
  auto mac512 = Post("hmac/lobstack/sha2-512", {{"input", B64("payload")}});
  EXPECT_EQ(Unb64(mac512.Json()["data"]["hmac"].get<std::string>().substr(9)).size(), 64u);
  EXPECT_EQ(Post("hmac/lobstack/md5", {{"input", B64("payload")}}).status, 400);
  ASSERT_EQ(Post("keys/mac", {{"type", "hmac"}}).status, 200);
  EXPECT_EQ(Post("hmac/mac", {{"input", B64("x")}}).status, 200);
  EXPECT_EQ(Post("encrypt/mac", {{"plaintext", B64("x")}}).status, 400);
  EXPECT_EQ(Error(Post("sign/lobstack", {{"input", B64("x")}})),
            "key type aes256-gcm96 does not support signing");

  auto rnd = Post("random/24", {{"format", "hex"}});
  ASSERT_EQ(rnd.status, 200) << rnd.body;
  EXPECT_EQ(rnd.Json()["data"]["random_bytes"].get<std::string>().size(), 48u);
  EXPECT_EQ(Unb64(Post("random/seal/16").Json()["data"]["random_bytes"]).size(), 16u);
  EXPECT_EQ(Unb64(Post("random", {{"source", "all"}}).Json()["data"]["random_bytes"]).size(), 32u);
  EXPECT_EQ(Post("random/0").status, 400);
  EXPECT_EQ(Post("random/bogus-source").status, 400);

  auto sum = Post("hash", {{"input", B64("hello")}});
  EXPECT_EQ(sum.Json()["data"]["sum"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(Post("hash/sha3-256", {{"input", B64("hello")}, {"format", "base64"}}).status, 200);
  EXPECT_EQ(Post("hash/sha1", {{"input", B64("hello")}}).status, 400);
}

TEST_F(TransitTest, KeysLiveInTheTokenOnlyAndSurviveRestarts) {
  ASSERT_EQ(Post("keys/lobstack").status, 200);
  const std::string ct = Encrypt("lobstack", "survives");
  // Encrypt creates a key with the create capability (Vault's upsert).
  EXPECT_THAT(Encrypt("fresh", "x"), StartsWith("vault:v1:"));
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_EQ(Unb64(Decrypt("lobstack", ct).Json()["data"]["plaintext"]), "survives");
  ASSERT_EQ(d_.Stop(), 0);

  // From the test process: the token holds the two KEKs and nothing else persistent; every
  // Transit key exists there only as a session object of the daemon (gone with it) and in
  // storage as a blob wrapped by the Transit KEK.
  auto token = hsm::Token::Open(d_.TokenConfig());
  ASSERT_TRUE(token.ok()) << token.status();
  auto lease = (*token)->Acquire();
  ASSERT_TRUE(lease.ok());
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_ATTRIBUTE find = {CKA_CLASS, &cls, sizeof cls};
  ASSERT_EQ(lease->fn()->C_FindObjectsInit(lease->handle(), &find, 1), CKR_OK);
  CK_OBJECT_HANDLE found[8];
  CK_ULONG n = 0;
  ASSERT_EQ(lease->fn()->C_FindObjects(lease->handle(), found, 8, &n), CKR_OK);
  ASSERT_EQ(lease->fn()->C_FindObjectsFinal(lease->handle()), CKR_OK);
  std::vector<std::string> labels;
  for (CK_ULONG i = 0; i < n; ++i) {
    char label[64] = {};
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof label - 1};
    ASSERT_EQ(lease->fn()->C_GetAttributeValue(lease->handle(), found[i], &a, 1), CKR_OK);
    labels.emplace_back(label, a.ulValueLen);
    auto attrs = (*token)->GetKeyAttributes(found[i]);
    ASSERT_TRUE(attrs.ok());
    EXPECT_TRUE(attrs->sensitive);
    EXPECT_FALSE(attrs->extractable);
    EXPECT_FALSE(attrs->encrypt);  // KEKs wrap; they never encrypt data
    EXPECT_EQ(ReadValueAnswer(**token, found[i]), "CKR_ATTRIBUTE_SENSITIVE");
  }
  std::sort(labels.begin(), labels.end());
  EXPECT_EQ(labels, (std::vector<std::string>{"strongroom-kek", "strongroom-transit-kek"}));
}

// Verifies a Vault-format signature with OpenSSL alone, from the public key the key read shows:
// what any client holding the public key can do.
bool VerifyOutside(const std::string& type, const json& key_info, const std::string& message,
                   const std::string& signature) {
  const std::string sig = Unb64(signature.substr(signature.find(':', 6) + 1));
  EVP_PKEY* pkey = nullptr;
  if (type == "ed25519") {
    const std::string raw = Unb64(key_info["public_key"]);
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                       reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  } else {
    const std::string pem = key_info["public_key"];
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  if (pkey == nullptr) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(md, &pctx, type == "ed25519" ? nullptr : EVP_sha256(), nullptr,
                                 pkey) == 1;
  if (ok && type.rfind("rsa", 0) == 0) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
  }
  ok =
      ok && EVP_DigestVerify(md, reinterpret_cast<const uint8_t*>(sig.data()), sig.size(),
                             reinterpret_cast<const uint8_t*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pkey);
  return ok;
}

TEST_F(TransitTest, SignAndVerifyWithEveryAsymmetricType) {
  const std::string msg = "transfer 100 EUR to tenant 7";
  // Ed25519: SoftHSM2 2.6.1 cannot wrap its private keys, so each version is a non-extractable
  // token object (docs/operations.md, "Transit"); to a client it is a key like the others.
  for (const std::string type : {"ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048"}) {
    SCOPED_TRACE(type);
    const std::string name = "k-" + type;
    auto created = Post("keys/" + name, {{"type", type}});
    ASSERT_EQ(created.status, 200) << created.body;
    json info = created.Json()["data"];
    EXPECT_EQ(info["supports_signing"], true);
    EXPECT_EQ(info["supports_encryption"], false);
    ASSERT_TRUE(info["keys"]["1"].is_object());
    EXPECT_FALSE(info["keys"]["1"]["creation_time"].get<std::string>().empty());
    if (type != "ed25519") {
      EXPECT_THAT(info["keys"]["1"]["public_key"].get<std::string>(),
                  HasSubstr("BEGIN PUBLIC KEY"));
    }

    auto signed_ = Post("sign/" + name, {{"input", B64(msg)}});
    ASSERT_EQ(signed_.status, 200) << signed_.body;
    const std::string sig = signed_.Json()["data"]["signature"];
    EXPECT_THAT(sig, StartsWith("vault:v1:"));
    EXPECT_TRUE(VerifyOutside(type, info["keys"]["1"], msg, sig));
    EXPECT_EQ(
        Post("verify/" + name, {{"input", B64(msg)}, {"signature", sig}}).Json()["data"]["valid"],
        true);
    EXPECT_EQ(Post("verify/" + name, {{"input", B64(msg + ".")}, {"signature", sig}})
                  .Json()["data"]["valid"],
              false);

    // Rotation: new signatures say v2; v1 ones verify until min_decryption_version passes them.
    ASSERT_EQ(Post("keys/" + name + "/rotate").status, 200);
    EXPECT_THAT(
        Post("sign/" + name, {{"input", B64(msg)}}).Json()["data"]["signature"].get<std::string>(),
        StartsWith("vault:v2:"));
    EXPECT_EQ(
        Post("verify/" + name, {{"input", B64(msg)}, {"signature", sig}}).Json()["data"]["valid"],
        true);
    ASSERT_EQ(Post("keys/" + name + "/config", {{"min_decryption_version", 2}}).status, 200);
    EXPECT_EQ(Error(Post("verify/" + name, {{"input", B64(msg)}, {"signature", sig}})),
              "ciphertext or signature version is disallowed by policy (too old)");
    EXPECT_EQ(Post("encrypt/" + name, {{"plaintext", B64("x")}}).status, 400);
  }

  // ECDSA: JWS marshaling (r || s, base64url), other hashes, prehashed input.
  auto jws =
      Post("sign/k-ecdsa-p256/sha2-384", {{"input", B64(msg)}, {"marshaling_algorithm", "jws"}});
  ASSERT_EQ(jws.status, 200) << jws.body;
  const std::string jsig = jws.Json()["data"]["signature"];
  EXPECT_EQ(jsig.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(Post("verify/k-ecdsa-p256/sha2-384",
                 {{"input", B64(msg)}, {"signature", jsig}, {"marshaling_algorithm", "jws"}})
                .Json()["data"]["valid"],
            true);
  const std::string digest(32, '\x5a');
  auto pre = Post("sign/k-ecdsa-p256", {{"input", B64(digest)}, {"prehashed", true}});
  ASSERT_EQ(pre.status, 200) << pre.body;
  EXPECT_EQ(Post("verify/k-ecdsa-p256", {{"input", B64(digest)},
                                         {"prehashed", true},
                                         {"signature", pre.Json()["data"]["signature"]}})
                .Json()["data"]["valid"],
            true);
  EXPECT_EQ(Post("sign/k-ecdsa-p256", {{"input", B64("short")}, {"prehashed", true}}).status, 400);

  // RSA: PKCS#1 v1.5 and PSS with sha2-512.
  for (const std::string algo : {"pkcs1v15", "pss"}) {
    auto r = Post("sign/k-rsa-2048/sha2-512", {{"input", B64(msg)}, {"signature_algorithm", algo}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Post("verify/k-rsa-2048/sha2-512", {{"input", B64(msg)},
                                                  {"signature_algorithm", algo},
                                                  {"signature", r.Json()["data"]["signature"]}})
                  .Json()["data"]["valid"],
              true);
  }
  // RSA encryption: Vault's OAEP with SHA-256 cannot be decrypted inside SoftHSM2 2.6.1.
  EXPECT_THAT(Error(Post("encrypt/k-rsa-2048", {{"plaintext", B64("x")}})),
              HasSubstr("rsa keys sign and verify only"));

  // Batch signing with one bad item.
  auto batch = Post("sign/k-ecdsa-p384",
                    {{"batch_input", json::array({{{"input", B64("a")}, {"reference", "1"}},
                                                  {{"input", "%%"}, {"reference", "2"}}})}});
  EXPECT_EQ(batch.status, 400);
  ASSERT_EQ(batch.Json()["data"]["batch_results"].size(), 2u);
  EXPECT_THAT(batch.Json()["data"]["batch_results"][0]["signature"].get<std::string>(),
              StartsWith("vault:v2:"));
  EXPECT_TRUE(batch.Json()["data"]["batch_results"][1].contains("error"));
}

class TransitLimitsTest : public TransitTest {
 protected:
  TransitLimitsTest()
      : TransitTest(
            "transit_max_encryptions_per_version = 3\ntransit_min_auto_rotate_period = \"1s\"\n") {}
};

TEST_F(TransitLimitsTest, NonceBoundRotatesBeforeItIsReachedEvenAcrossRestarts) {
  ASSERT_EQ(Post("keys/k").status, 200);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(Encrypt("k", "x"), StartsWith("vault:v1:"));
  EXPECT_THAT(Encrypt("k", "x"), StartsWith("vault:v2:"));  // v1 spent: rotated first
  EXPECT_THAT(Error(Post("encrypt/k", {{"plaintext", B64("x")}, {"key_version", 1}})),
              HasSubstr("encryption limit"));
  EXPECT_EQ(d_.Root("GET", "/v1/transit/keys/k").Json()["data"]["latest_version"], 2);
  // The count is durable: v2 has used 1 of 3, but a restart cannot know how many of its reserved
  // nonces were spent, so it counts them all.
  ASSERT_TRUE(d_.Restart()) << d_.Log();
  EXPECT_THAT(Encrypt("k", "x"), StartsWith("vault:v3:"));
}

TEST_F(TransitLimitsTest, AutoRotationHappensInTheBackground) {
  ASSERT_EQ(Post("keys/lobstack", {{"auto_rotate_period", "2s"}}).status, 200);
  int latest = 1;
  for (int i = 0; i < 200 && latest < 2; ++i) {
    usleep(50 * 1000);
    latest = d_.Root("GET", "/v1/transit/keys/lobstack").Json()["data"]["latest_version"];
  }
  EXPECT_GE(latest, 2) << d_.Log();
  EXPECT_TRUE(d_.WaitForLog("auto-rotated"));
  ASSERT_EQ(Post("keys/lobstack/config", {{"auto_rotate_period", 0}}).status, 200);
}

}  // namespace
}  // namespace strongroom::testing
