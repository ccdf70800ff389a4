// JWT parsing and verification for the Kubernetes auth method (RFC 7515 compact JWS, RFC 7518
// section 3 algorithms, RFC 7519 registered claims; Vault API: auth/kubernetes/login). Keys are
// generated at runtime and tokens signed here, so the tests need no files.
#include "appliance/engines/jwt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "base/strings.h"

namespace strongroom::engines::jwt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- keys and signing (test side) --------------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct SigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

Pkey Rsa(unsigned bits) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  EXPECT_NE(k, nullptr);
  return k;
}

Pkey Ec(const char* curve) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  EXPECT_NE(k, nullptr);
  return k;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string PublicPem(EVP_PKEY* k) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), k), 1);
  return BioText(bio.get());
}

std::string PrivatePem(EVP_PKEY* k) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr), 1);
  return BioText(bio.get());
}

// A self-signed certificate for `k`, as a cluster CA bundle would carry it.
std::string CertificatePem(EVP_PKEY* k) {
  std::unique_ptr<X509, X509Free> cert(X509_new());
  EXPECT_EQ(X509_set_version(cert.get(), 2), 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("kube-apiserver"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  EXPECT_EQ(X509_set_pubkey(cert.get(), k), 1);
  EXPECT_GT(X509_sign(cert.get(), k, EVP_sha256()), 0);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert.get()), 1);
  return BioText(bio.get());
}

std::string B64(std::string_view s) { return absl::WebSafeBase64Escape(Av(s)); }

const EVP_MD* MdFor(std::string_view alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  return EVP_sha512();
}

// The JWS signature of `input` for `alg` (RSn: PKCS#1 v1.5; ESn: raw r||s of `coord` bytes each).
std::string SignRaw(std::string_view alg, EVP_PKEY* k, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, MdFor(alg), nullptr, k), 1);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                           input.size()),
            1);
  sig.resize(len);
  if (alg.starts_with("RS")) return sig;
  const int coord = alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  std::unique_ptr<ECDSA_SIG, SigFree> ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  EXPECT_NE(ecdsa, nullptr);
  std::string raw(2 * static_cast<size_t>(coord), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa.get()), out, coord), coord);
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa.get()), out + coord, coord), coord);
  return raw;
}

std::string Header(std::string_view alg) {
  return std::string(R"({"alg":")") + std::string(alg) + R"(","kid":"k1","typ":"JWT"})";
}

// A compact JWS of `payload` (JSON text) under `header` (JSON text), signed with `k`.
std::string SignWithHeader(std::string_view header, std::string_view alg, EVP_PKEY* k,
                           std::string_view payload) {
  std::string input = B64(header) + "." + B64(payload);
  return input + "." + B64(SignRaw(alg, k, input));
}

std::string Sign(std::string_view alg, EVP_PKEY* k, std::string_view payload) {
  return SignWithHeader(Header(alg), alg, k, payload);
}

constexpr char kClaims[] =
    R"({"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:default:app"})";

// Parse, then verify against `keys`.
absl::Status ParseAndVerify(const KeySet& keys, std::string_view token) {
  absl::StatusOr<Jwt> j = Parse(token);
  if (!j.ok()) return j.status();
  return keys.Verify(*j);
}

KeySet Keys(const std::vector<std::string>& pems) {
  absl::StatusOr<KeySet> ks = KeySet::FromPem(pems);
  EXPECT_TRUE(ks.ok()) << ks.status();
  return ks.ok() ? *std::move(ks) : KeySet();
}

class JwtTest : public ::testing::Test {
 protected:
  // Key generation (RSA especially) is the slow part; one set for the whole suite.
  static void SetUpTestSuite() {
    rsa_ = Rsa(2048).release();
    rsa_other_ = Rsa(2048).release();
    p256_ = Ec("P-256").release();
    p256_other_ = Ec("P-256").release();
    p384_ = Ec("P-384").release();
    p521_ = Ec("P-521").release();
  }
  static void TearDownTestSuite() {
    for (EVP_PKEY* k : {rsa_, rsa_other_, p256_, p256_other_, p384_, p521_}) EVP_PKEY_free(k);
  }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* rsa_other_;
  static EVP_PKEY* p256_;
  static EVP_PKEY* p256_other_;
  static EVP_PKEY* p384_;
  static EVP_PKEY* p521_;
};
EVP_PKEY* JwtTest::rsa_ = nullptr;
EVP_PKEY* JwtTest::rsa_other_ = nullptr;
EVP_PKEY* JwtTest::p256_ = nullptr;
EVP_PKEY* JwtTest::p256_other_ = nullptr;
EVP_PKEY* JwtTest::p384_ = nullptr;
EVP_PKEY* JwtTest::p521_ = nullptr;

void ExpectDenied(const absl::Status& s, std::string_view why) {
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(s.message(), HasSubstr(Av(why)));
}

void ExpectMalformed(std::string_view token, std::string_view why) {
  absl::StatusOr<Jwt> j = Parse(token);
  ASSERT_FALSE(j.ok()) << why;
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument) << j.status();
  EXPECT_THAT(j.status().message(), AllOf(HasSubstr("malformed JWT: "), HasSubstr(Av(why))));
}

// ---- Parse -------------------------------------------------------------------------------------

TEST_F(JwtTest, ParseExposesHeaderClaimsAndSigningInput) {
  const std::string token = Sign("RS256", rsa_, kClaims);
  absl::StatusOr<Jwt> j = Parse(token);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->alg, "RS256");
  EXPECT_EQ(j->kid, "k1");
  EXPECT_EQ(j->header.at("typ").as_string(), "JWT");
  EXPECT_EQ(j->claims.at("sub").as_string(), "system:serviceaccount:default:app");
  EXPECT_EQ(j->signing_input, token.substr(0, token.rfind('.')));
  EXPECT_EQ(j->signature.size(), 256u);
}

TEST_F(JwtTest, ParseRefusesMalformedTokens) {
  const std::string h = B64(Header("RS256"));
  const std::string p = B64(kClaims);
  const std::string s = B64("signature");
  ExpectMalformed("", "empty");
  ExpectMalformed(h + "." + p, "three dot-separated parts");
  ExpectMalformed(h + "." + p + "." + s + "." + s, "three dot-separated parts");
  ExpectMalformed("." + p + "." + s, "header is empty");
  ExpectMalformed(h + ".." + s, "payload is empty");
  ExpectMalformed(h + "." + p + "." + s + "*", "signature is not unpadded base64url");
  ExpectMalformed(h + "." + p + "!" + "." + s, "payload is not unpadded base64url");
}

TEST_F(JwtTest, ParseAcceptsEmptyObjectsAndSignature) {
  // An empty claims object is well-formed (claim rules decide later) and "none"
  // tokens carry an empty signature (Verify refuses them, with a reason).
  absl::StatusOr<Jwt> j = Parse(B64(Header("RS256")) + "." + B64("{}") + ".");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_TRUE(j->claims.empty());
  EXPECT_TRUE(j->signature.empty());
}

TEST_F(JwtTest, ParseRefusesPaddingAndNonCanonicalBase64) {
  // {"alg":"RS256"} is 15 bytes: no padding needed. {} is 2 bytes: "e30", padded "e30=".
  const std::string h = B64(R"({"alg":"RS256"})");
  const std::string s = B64("sig");
  ASSERT_TRUE(Parse(h + ".e30." + s).ok());
  ExpectMalformed(h + ".e30=." + s, "payload is not unpadded base64url");
  ExpectMalformed(B64(R"({"alg":"RS256", })") + "=.e30." + s, "header is not unpadded base64url");
  ExpectMalformed(h + ".e30." + B64("si") + "==", "signature is not unpadded base64url");
  // "e31" decodes to the same two bytes as "e30" in lenient decoders; one spelling only.
  ExpectMalformed(h + ".e31." + s, "payload is not unpadded base64url");
  // Standard-alphabet characters and whitespace are not base64url.
  ExpectMalformed(h + ".e30." + "ab+/", "signature is not unpadded base64url");
  ExpectMalformed(h + ".e3 0." + s, "payload is not unpadded base64url");
  ExpectMalformed(h + ".e30\n." + s, "payload is not unpadded base64url");
}

TEST_F(JwtTest, ParseRefusesNonObjectJson) {
  const std::string h = B64(R"({"alg":"RS256"})");
  const std::string s = B64("sig");
  ExpectMalformed(B64("not json") + ".e30." + s, "header is not a JSON object");
  ExpectMalformed(B64(R"(["alg","RS256"])") + ".e30." + s, "header is not a JSON object");
  ExpectMalformed(h + "." + B64(R"(["aud"])") + "." + s, "payload is not a JSON object");
  ExpectMalformed(h + "." + B64("  ") + "." + s, "payload is not a JSON object");
  ExpectMalformed(h + "." + B64(R"({"a":1} x)") + "." + s, "payload is not a JSON object");
  ExpectMalformed(h + "." + B64("{\"a\":\"\xff\"}") + "." + s, "payload is not a JSON object");
  // Depth: 16 levels of nesting are fine, 17 are not.
  auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth - 1), '[').insert(0, "{\"a\":") +
           std::string(static_cast<size_t>(depth - 1), ']') + "}";
  };
  EXPECT_TRUE(Parse(h + "." + B64(nested(16)) + "." + s).ok());
  ExpectMalformed(h + "." + B64(nested(17)) + "." + s, "payload is not a JSON object");
}

TEST_F(JwtTest, ParseRequiresAlgAndStringKid) {
  const std::string rest = ".e30." + B64("sig");
  ExpectMalformed(B64(R"({"typ":"JWT"})") + rest, "header has no alg string");
  ExpectMalformed(B64(R"({"alg":256})") + rest, "header has no alg string");
  ExpectMalformed(B64(R"({"alg":""})") + rest, "header has no alg string");
  ExpectMalformed(B64(R"({"alg":"RS256","kid":7})") + rest, "header kid is not a string");
  absl::StatusOr<Jwt> j = Parse(B64(R"({"alg":"RS256"})") + rest);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->kid, "");
}

TEST_F(JwtTest, ParseCapsTokenSize) {
  const std::string h = B64(R"({"alg":"RS256"})");
  const std::string fill = B64(std::string(40000, 'x'));  // 53334 characters
  const std::string under = h + "." + B64(R"({"a":"b"})") + "." + fill;
  ASSERT_LE(under.size(), kMaxTokenSize);
  EXPECT_TRUE(Parse(under).ok());
  const std::string over = h + "." + B64(R"({"a":"b"})") + "." + fill + fill.substr(0, 12288);
  ASSERT_GT(over.size(), kMaxTokenSize);
  ExpectMalformed(over, "larger than 64 KiB");
}

TEST_F(JwtTest, ErrorsNeverQuoteTheToken) {
  const std::string secret = "s3cr3t-marker";
  const std::string payload = B64(R"({"x":")" + secret + R"("} trailing)");
  for (const std::string& token : {
           B64(R"({"alg":")" + secret + R"("})") + "." + payload + ".",
           B64(secret) + "." + payload + ".",
           B64(R"({"alg":"RS256"})") + "." + payload + ".",
           B64(R"({"alg":"RS256"})") + "." + secret + "!.",
       }) {
    absl::StatusOr<Jwt> j = Parse(token);
    ASSERT_FALSE(j.ok());
    EXPECT_THAT(j.status().message(), Not(HasSubstr(Av(secret))));
    EXPECT_THAT(j.status().message(), Not(HasSubstr("czNjcjN0")));  // base64url of "s3cr3t"
  }
  // Unknown algorithms are not echoed either.
  absl::StatusOr<Jwt> j = Parse(B64(R"({"alg":")" + secret + R"("})") + ".e30.");
  ASSERT_TRUE(j.ok());
  absl::Status s = Keys({PublicPem(rsa_)}).Verify(*j);
  ExpectDenied(s, "JWT algorithm is not supported");
  EXPECT_THAT(s.message(), Not(HasSubstr(Av(secret))));
}

TEST(Base64Url, StrictDecoding) {
  EXPECT_EQ(Base64UrlDecode(""), "");
  EXPECT_EQ(Base64UrlDecode("YQ"), "a");
  EXPECT_EQ(Base64UrlDecode("YWI"), "ab");
  EXPECT_EQ(Base64UrlDecode("YWJj"), "abc");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(Base64UrlDecode("YQ=="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("YWI="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("YR"), std::nullopt);     // non-zero trailing bits
  EXPECT_EQ(Base64UrlDecode("YWJ"), std::nullopt);    // non-zero trailing bits
  EXPECT_EQ(Base64UrlDecode("YWJjZ"), std::nullopt);  // a lone sextet is no byte
  EXPECT_EQ(Base64UrlDecode("+/8"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("YW Jj"), std::nullopt);
}

// ---- Verify ------------------------------------------------------------------------------------

TEST_F(JwtTest, RsaAlgorithmsVerify) {
  const KeySet keys = Keys({PublicPem(rsa_)});
  for (std::string_view alg : {"RS256", "RS384", "RS512"}) {
    EXPECT_TRUE(ParseAndVerify(keys, Sign(alg, rsa_, kClaims)).ok()) << alg;
  }
}

TEST_F(JwtTest, EcdsaAlgorithmsVerify) {
  const KeySet keys = Keys({PublicPem(p256_), PublicPem(p384_), PublicPem(p521_)});
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES256", p256_, kClaims)).ok());
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES384", p384_, kClaims)).ok());
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES512", p521_, kClaims)).ok());
}

TEST_F(JwtTest, EveryConfiguredKeyIsTried) {
  // kid is not used to pick a key: the right one is found among several of the same type.
  const KeySet keys =
      Keys({PublicPem(rsa_other_), PublicPem(p256_other_), PublicPem(rsa_), PublicPem(p256_)});
  EXPECT_TRUE(ParseAndVerify(keys, Sign("RS256", rsa_, kClaims)).ok());
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES256", p256_, kClaims)).ok());
}

TEST_F(JwtTest, AlgNoneRefused) {
  const KeySet keys = Keys({PublicPem(rsa_)});
  const std::string token = B64(R"({"alg":"none","typ":"JWT"})") + "." + B64(kClaims) + ".";
  ExpectDenied(ParseAndVerify(keys, token), "JWT algorithm none is not accepted");
  // With a (valid RS256) signature appended, still refused.
  const std::string signed_input = B64(R"({"alg":"none"})") + "." + B64(kClaims);
  ExpectDenied(ParseAndVerify(keys, signed_input + "." + B64(SignRaw("RS256", rsa_, signed_input))),
               "none is not accepted");
  // Case variants are unknown algorithms, refused as such.
  ExpectDenied(ParseAndVerify(keys, B64(R"({"alg":"None"})") + "." + B64(kClaims) + "."),
               "not supported");
}

TEST_F(JwtTest, HmacRefusedEvenKeyedWithThePublicKey) {
  // The classic confusion attack: HS256 with the RSA public key PEM as the HMAC secret.
  const std::string pem = PublicPem(rsa_);
  const KeySet keys = Keys({pem});
  const std::string input = B64(Header("HS256")) + "." + B64(kClaims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  ASSERT_NE(HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()),
                 reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len),
            nullptr);
  const std::string token =
      input + "." + B64(std::string(reinterpret_cast<const char*>(mac), mac_len));
  ExpectDenied(ParseAndVerify(keys, token), "JWT algorithm HS256 is not accepted");
}

TEST_F(JwtTest, PssAndUnknownAlgorithmsRefused) {
  const KeySet keys = Keys({PublicPem(rsa_)});
  const std::string rest = "." + B64(kClaims) + "." + B64("sig");
  ExpectDenied(ParseAndVerify(keys, B64(Header("PS256")) + rest), "PS256 is not accepted");
  ExpectDenied(ParseAndVerify(keys, B64(Header("EdDSA")) + rest), "not supported");
  ExpectDenied(ParseAndVerify(keys, B64(Header("RS1")) + rest), "not supported");
}

TEST_F(JwtTest, WrongKeyRefused) {
  ExpectDenied(ParseAndVerify(Keys({PublicPem(rsa_other_)}), Sign("RS256", rsa_, kClaims)),
               "JWT signature did not verify with any configured key");
  ExpectDenied(ParseAndVerify(Keys({PublicPem(p256_other_)}), Sign("ES256", p256_, kClaims)),
               "JWT signature did not verify with any configured key");
}

TEST_F(JwtTest, TamperedTokensRefused) {
  const KeySet keys = Keys({PublicPem(rsa_), PublicPem(p256_)});
  for (std::string_view alg : {"RS256", "ES256"}) {
    EVP_PKEY* k = alg == "RS256" ? rsa_ : p256_;
    const std::string good = Sign(alg, k, kClaims);
    ASSERT_TRUE(ParseAndVerify(keys, good).ok());
    const size_t dot1 = good.find('.');
    const size_t dot2 = good.rfind('.');
    // Payload swapped for another subject, header and signature kept.
    const std::string payload = B64(
        R"({"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:kube-system:admin"})");
    ExpectDenied(ParseAndVerify(keys, good.substr(0, dot1 + 1) + payload + good.substr(dot2)),
                 "did not verify");
    // Header changed (kid), same alg.
    const std::string header = B64(R"({"alg":")" + std::string(alg) + R"(","kid":"k2"})");
    ExpectDenied(ParseAndVerify(keys, header + good.substr(dot1)), "did not verify");
    // One signature bit flipped.
    absl::StatusOr<Jwt> j = Parse(good);
    ASSERT_TRUE(j.ok());
    j->signature[j->signature.size() / 2] ^= 0x01;
    ExpectDenied(keys.Verify(*j), "did not verify");
  }
}

TEST_F(JwtTest, TruncatedSignatureRefused) {
  const KeySet keys = Keys({PublicPem(rsa_), PublicPem(p256_)});
  for (std::string_view alg : {"RS256", "ES256"}) {
    absl::StatusOr<Jwt> j = Parse(Sign(alg, alg == "RS256" ? rsa_ : p256_, kClaims));
    ASSERT_TRUE(j.ok());
    j->signature.pop_back();
    absl::Status s = keys.Verify(*j);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << alg;
    j->signature.clear();
    EXPECT_EQ(keys.Verify(*j).code(), absl::StatusCode::kPermissionDenied) << alg;
  }
  absl::StatusOr<Jwt> j = Parse(Sign("ES256", p256_, kClaims));
  ASSERT_TRUE(j.ok());
  j->signature.resize(48);
  ExpectDenied(keys.Verify(*j), "JWT signature has the wrong length for ES256");
}

TEST_F(JwtTest, EcdsaCurveMustMatchAlg) {
  // ES256 signed with a P-384 key (SHA-256 digest): the alg promises P-256.
  const std::string input = B64(Header("ES256")) + "." + B64(kClaims);
  const std::string p384_sig = SignRaw("ES384", p384_, input);  // 96 bytes, wrong for ES256
  const KeySet p384_only = Keys({PublicPem(p384_)});
  ExpectDenied(ParseAndVerify(p384_only, input + "." + B64(p384_sig)), "wrong length for ES256");
  // A correctly sized ES256 signature with only a P-384 key configured: no key of that curve.
  ExpectDenied(ParseAndVerify(p384_only, Sign("ES256", p256_, kClaims)),
               "JWT algorithm ES256 does not match the type or curve of any configured key");
  // And an ES384 token checked against a P-256 key only.
  ExpectDenied(ParseAndVerify(Keys({PublicPem(p256_)}), Sign("ES384", p384_, kClaims)),
               "does not match the type or curve");
}

TEST_F(JwtTest, KeyTypeMustMatchAlg) {
  ExpectDenied(ParseAndVerify(Keys({PublicPem(p256_)}), Sign("RS256", rsa_, kClaims)),
               "JWT algorithm RS256 does not match the type or curve of any configured key");
  ExpectDenied(ParseAndVerify(Keys({PublicPem(rsa_)}), Sign("ES256", p256_, kClaims)),
               "does not match the type or curve");
}

TEST_F(JwtTest, CriticalHeadersRefused) {
  const std::string token =
      SignWithHeader(R"({"alg":"RS256","crit":["b64"],"b64":false})", "RS256", rsa_, kClaims);
  ExpectDenied(ParseAndVerify(Keys({PublicPem(rsa_)}), token), "critical header parameters");
}

TEST_F(JwtTest, EmbeddedKeysAreIgnored) {
  // A jwk header naming the attacker's key changes nothing: only configured keys verify.
  const std::string token =
      SignWithHeader(R"({"alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}})",
                     "ES256", p256_other_, kClaims);
  ExpectDenied(ParseAndVerify(Keys({PublicPem(p256_)}), token), "did not verify");
}

TEST_F(JwtTest, EmptyKeySetVerifiesNothing) {
  absl::StatusOr<KeySet> keys = KeySet::FromPem({});
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 0u);
  ExpectDenied(ParseAndVerify(*keys, Sign("RS256", rsa_, kClaims)),
               "no JWT verification keys are configured");
}

// ---- KeySet::FromPem ---------------------------------------------------------------------------

TEST_F(JwtTest, CertificatePemsWork) {
  const KeySet keys = Keys({CertificatePem(rsa_), CertificatePem(p256_)});
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_TRUE(ParseAndVerify(keys, Sign("RS256", rsa_, kClaims)).ok());
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES256", p256_, kClaims)).ok());
}

TEST_F(JwtTest, OnePemMayHoldSeveralBlocks) {
  // A bundle with surrounding text and a block type we skip.
  const std::string bundle = "kube-apiserver keys\n" + PublicPem(rsa_other_) +
                             "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n" +
                             CertificatePem(p256_) + PublicPem(rsa_);
  const KeySet keys = Keys({bundle});
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_TRUE(ParseAndVerify(keys, Sign("RS256", rsa_, kClaims)).ok());
  EXPECT_TRUE(ParseAndVerify(keys, Sign("ES256", p256_, kClaims)).ok());
}

void ExpectBadPem(const std::vector<std::string>& pems, std::string_view index,
                  std::string_view why) {
  absl::StatusOr<KeySet> ks = KeySet::FromPem(pems);
  ASSERT_FALSE(ks.ok()) << why;
  EXPECT_EQ(ks.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ks.status().message(), AllOf(HasSubstr(Av(index)), HasSubstr(Av(why))));
}

TEST_F(JwtTest, UnusablePemsRefusedWithTheirIndex) {
  const std::string good = PublicPem(rsa_);
  ExpectBadPem({good, "garbage"}, "pem_keys[1]", "no PUBLIC KEY or CERTIFICATE block");
  ExpectBadPem({""}, "pem_keys[0]", "no PUBLIC KEY or CERTIFICATE block");
  ExpectBadPem({good, good, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
               "pem_keys[2]", "not a valid SPKI key");
  ExpectBadPem({"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "pem_keys[0]",
               "CERTIFICATE block does not parse");
  ExpectBadPem({"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"}, "pem_keys[0]",
               "does not parse");
  // A good block followed by a broken one is refused as a whole.
  ExpectBadPem({good + "-----BEGIN PUBLIC KEY-----\nMIIB\n"}, "pem_keys[0]", "does not parse");
}

TEST_F(JwtTest, WeakOrUnsupportedKeysRefused) {
  Pkey rsa1024 = Rsa(1024);
  ExpectBadPem({PublicPem(rsa_), PublicPem(rsa1024.get())}, "pem_keys[1]",
               "RSA key of 1024 bits is too small");
  Pkey k256 = Ec("secp256k1");
  ExpectBadPem({PublicPem(k256.get())}, "pem_keys[0]", "not on P-256, P-384 or P-521");
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_NE(ed, nullptr);
  ExpectBadPem({PublicPem(ed.get())}, "pem_keys[0]", "neither RSA nor EC");
  ExpectBadPem({PrivatePem(p256_)}, "pem_keys[0]", "holds a private key");
}

// ---- ValidateClaims ----------------------------------------------------------------------------

Jwt WithClaims(std::string_view claims_json) {
  absl::StatusOr<Jwt> j = Parse(B64(R"({"alg":"RS256"})") + "." + B64(claims_json) + ".");
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? *std::move(j) : Jwt();
}

constexpr int64_t kNow = 1700000000;

ClaimRules At(int64_t now) {
  ClaimRules r;
  r.now_unix = now;
  return r;
}

TEST(ValidateClaims, NoClaimsNoRulesIsFine) {
  EXPECT_TRUE(ValidateClaims(WithClaims("{}"), At(kNow)).ok());
}

TEST(ValidateClaims, Expiry) {
  const Jwt j = WithClaims(R"({"exp":1700000000})");
  EXPECT_TRUE(ValidateClaims(j, At(kNow - 1000)).ok());
  EXPECT_TRUE(ValidateClaims(j, At(kNow)).ok());
  EXPECT_TRUE(ValidateClaims(j, At(kNow + 59)).ok());  // within the 60 s leeway
  ExpectDenied(ValidateClaims(j, At(kNow + 60)), "JWT has expired");
  ExpectDenied(ValidateClaims(j, At(kNow + 3600)), "JWT has expired");
  ClaimRules strict = At(kNow + 1);
  strict.leeway_seconds = 0;
  ExpectDenied(ValidateClaims(j, strict), "JWT has expired");
  // Fractional NumericDates are truncated, as go-jose does.
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"exp":1700000000.9})"), At(kNow + 59)).ok());
}

TEST(ValidateClaims, NotBefore) {
  const Jwt j = WithClaims(R"({"nbf":1700000000})");
  EXPECT_TRUE(ValidateClaims(j, At(kNow)).ok());
  EXPECT_TRUE(ValidateClaims(j, At(kNow - 60)).ok());  // leeway
  ExpectDenied(ValidateClaims(j, At(kNow - 61)), "JWT is not valid yet");
}

TEST(ValidateClaims, IssuedAt) {
  const Jwt j = WithClaims(R"({"iat":1700000000})");
  EXPECT_TRUE(ValidateClaims(j, At(kNow + 86400)).ok());  // old tokens are fine
  EXPECT_TRUE(ValidateClaims(j, At(kNow - 60)).ok());
  ExpectDenied(ValidateClaims(j, At(kNow - 61)), "JWT was issued in the future");
}

TEST(ValidateClaims, ExtremeValuesDoNotOverflow) {
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"exp":9223372036854775807})"), At(kNow)).ok());
  ExpectDenied(ValidateClaims(WithClaims(R"({"exp":-9223372036854775808})"), At(kNow)),
               "JWT has expired");
  ClaimRules far = At(INT64_MAX);
  far.leeway_seconds = 60;
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"nbf":9223372036854775807})"), far).ok());
  ExpectDenied(ValidateClaims(WithClaims(R"({"exp":18446744073709551615})"), At(kNow)),
               "JWT claim exp is not a valid NumericDate");
  ExpectDenied(ValidateClaims(WithClaims(R"({"exp":1e300})"), At(kNow)),
               "JWT claim exp is not a valid NumericDate");
}

TEST(ValidateClaims, WrongTypesRefused) {
  ExpectDenied(ValidateClaims(WithClaims(R"({"exp":"1700000000"})"), At(kNow)),
               "JWT claim exp is not a valid NumericDate");
  ExpectDenied(ValidateClaims(WithClaims(R"({"nbf":true})"), At(kNow)),
               "JWT claim nbf is not a valid NumericDate");
  ExpectDenied(ValidateClaims(WithClaims(R"({"iat":[1]})"), At(kNow)),
               "JWT claim iat is not a valid NumericDate");
  ExpectDenied(ValidateClaims(WithClaims(R"({"iss":1})"), At(kNow)),
               "JWT claim iss is not a string");
  ExpectDenied(ValidateClaims(WithClaims(R"({"sub":{}})"), At(kNow)),
               "JWT claim sub is not a string");
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":1})"), At(kNow)),
               "JWT claim aud is not a string");
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":["a",1]})"), At(kNow)),
               "JWT claim aud is not a string or a list of strings");
  // null is absent, as in go-jose's pointer fields.
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"exp":null,"aud":null})"), At(kNow)).ok());
}

TEST(ValidateClaims, Issuer) {
  ClaimRules r = At(kNow);
  r.issuer = "https://kubernetes.default.svc.cluster.local";
  EXPECT_TRUE(
      ValidateClaims(WithClaims(R"({"iss":"https://kubernetes.default.svc.cluster.local"})"), r)
          .ok());
  ExpectDenied(ValidateClaims(WithClaims(R"({"iss":"kubernetes/serviceaccount"})"), r),
               "JWT issuer does not match");
  ExpectDenied(ValidateClaims(WithClaims("{}"), r), "JWT issuer does not match");
  // No issuer rule: any issuer.
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"iss":"anything"})"), At(kNow)).ok());
}

TEST(ValidateClaims, AudienceAsString) {
  ClaimRules r = At(kNow);
  r.audiences = {"vault", "strongroom"};
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"aud":"strongroom"})"), r).ok());
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":"https://kubernetes.default.svc"})"), r),
               "JWT audience does not match");
  ExpectDenied(ValidateClaims(WithClaims("{}"), r), "JWT audience does not match");
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":"Vault"})"), r), "JWT audience does not match");
}

TEST(ValidateClaims, AudienceAsArray) {
  ClaimRules r = At(kNow);
  r.audiences = {"vault"};
  EXPECT_TRUE(
      ValidateClaims(WithClaims(R"({"aud":["https://kubernetes.default.svc","vault"]})"), r).ok());
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":["https://kubernetes.default.svc"]})"), r),
               "JWT audience does not match");
  ExpectDenied(ValidateClaims(WithClaims(R"({"aud":[]})"), r), "JWT audience does not match");
  // No audience rule: any audience.
  EXPECT_TRUE(ValidateClaims(WithClaims(R"({"aud":["x"]})"), At(kNow)).ok());
}

TEST(ValidateClaims, AllRulesTogether) {
  ClaimRules r = At(kNow);
  r.issuer = "https://kubernetes.default.svc";
  r.audiences = {"vault"};
  const Jwt good =
      WithClaims(R"({"iss":"https://kubernetes.default.svc","aud":["vault"],"exp":1700003600,)"
                 R"("iat":1699999990,"nbf":1699999990,"sub":"system:serviceaccount:default:app"})");
  EXPECT_TRUE(ValidateClaims(good, r).ok());
  ExpectDenied(ValidateClaims(good, At(kNow + 7200)), "JWT has expired");
}

// ---- ServiceAccountFromClaims ------------------------------------------------------------------

absl::StatusOr<ServiceAccount> Sa(std::string_view claims_json) {
  return ServiceAccountFromClaims(WithClaims(claims_json).claims);
}

TEST(ServiceAccountClaims, LegacyToken) {
  absl::StatusOr<ServiceAccount> sa = Sa(R"({
    "iss": "kubernetes/serviceaccount",
    "kubernetes.io/serviceaccount/namespace": "default",
    "kubernetes.io/serviceaccount/secret.name": "app-token-x2kqp",
    "kubernetes.io/serviceaccount/service-account.name": "app",
    "kubernetes.io/serviceaccount/service-account.uid": "0b7a4b6e-2f0e-4f40-a1b5-3b3f2c0e7c11",
    "sub": "system:serviceaccount:default:app"})");
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->namespace_, "default");
  EXPECT_EQ(sa->name, "app");
  EXPECT_EQ(sa->uid, "0b7a4b6e-2f0e-4f40-a1b5-3b3f2c0e7c11");
  EXPECT_EQ(sa->secret_name, "app-token-x2kqp");
  EXPECT_EQ(sa->pod_name, "");
}

TEST(ServiceAccountClaims, ProjectedToken) {
  absl::StatusOr<ServiceAccount> sa = Sa(R"({
    "aud": ["https://kubernetes.default.svc.cluster.local"],
    "exp": 1731613413, "iat": 1700077413, "nbf": 1700077413,
    "iss": "https://kubernetes.default.svc.cluster.local",
    "kubernetes.io": {
      "namespace": "payments",
      "pod": {"name": "api-7d9c7b9b8-5kq2x", "uid": "5e0f1d55-6a44-4c3e-9a57-1c7c0c7f0d11"},
      "serviceaccount": {"name": "api", "uid": "9c1b8a3e-2b1f-4a51-9d0b-0e0f6f4e3a22"},
      "warnafter": 1700081020
    },
    "sub": "system:serviceaccount:payments:api"})");
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->namespace_, "payments");
  EXPECT_EQ(sa->name, "api");
  EXPECT_EQ(sa->uid, "9c1b8a3e-2b1f-4a51-9d0b-0e0f6f4e3a22");
  EXPECT_EQ(sa->pod_name, "api-7d9c7b9b8-5kq2x");
  EXPECT_EQ(sa->secret_name, "");
}

TEST(ServiceAccountClaims, ProjectedWithoutPodOrSub) {
  absl::StatusOr<ServiceAccount> sa =
      Sa(R"({"kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"n","uid":"u"}}})");
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->pod_name, "");
}

TEST(ServiceAccountClaims, ProjectedClaimsWinOverLegacy) {
  absl::StatusOr<ServiceAccount> sa = Sa(R"({
    "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "n", "uid": "u"}},
    "kubernetes.io/serviceaccount/namespace": "other"})");
  ASSERT_TRUE(sa.ok()) << sa.status();
  EXPECT_EQ(sa->namespace_, "ns");
}

TEST(ServiceAccountClaims, SubjectMustMatch) {
  ExpectDenied(
      Sa(R"({"kubernetes.io":{"namespace":"default","serviceaccount":{"name":"app","uid":"u"}},)"
         R"("sub":"system:serviceaccount:kube-system:app"})")
          .status(),
      "JWT subject does not match its service account claims");
  ExpectDenied(Sa(R"({"kubernetes.io/serviceaccount/namespace":"default",)"
                  R"("kubernetes.io/serviceaccount/service-account.name":"app",)"
                  R"("kubernetes.io/serviceaccount/service-account.uid":"u",)"
                  R"("sub":"system:serviceaccount:default:app2"})")
                   .status(),
               "JWT subject does not match");
  ExpectDenied(Sa(R"({"kubernetes.io":{"namespace":"a:b","serviceaccount":{"name":"c","uid":"u"}},)"
                  R"("sub":"system:serviceaccount:a:b:d"})")
                   .status(),
               "JWT subject does not match");
  ExpectDenied(
      Sa(R"({"kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"n","uid":"u"}},"sub":7})")
          .status(),
      "JWT claim sub is not a string");
}

TEST(ServiceAccountClaims, MissingOrMistypedClaimsRefused) {
  ExpectDenied(Sa(R"({"sub":"system:serviceaccount:default:app"})").status(),
               "JWT has no Kubernetes service account claims");
  ExpectDenied(Sa(R"({"kubernetes.io":{"namespace":"ns","serviceaccount":{"name":"n"}}})").status(),
               "JWT has no Kubernetes service account claims");
  ExpectDenied(
      Sa(R"({"kubernetes.io":{"namespace":"","serviceaccount":{"name":"n","uid":"u"}}})").status(),
      "JWT has no Kubernetes service account claims");
  ExpectDenied(Sa(R"({"kubernetes.io/serviceaccount/namespace":"default",)"
                  R"("kubernetes.io/serviceaccount/service-account.name":"app"})")
                   .status(),
               "JWT has no Kubernetes service account claims");
  ExpectDenied(Sa(R"({"kubernetes.io":"default"})").status(),
               "JWT claim kubernetes.io is not an object");
  ExpectDenied(Sa(R"({"kubernetes.io":{"namespace":"ns","serviceaccount":["n","u"]}})").status(),
               "JWT claim kubernetes.io.serviceaccount is not an object");
  ExpectDenied(
      Sa(R"({"kubernetes.io":{"namespace":1,"serviceaccount":{"name":"n","uid":"u"}}})").status(),
      "JWT claim kubernetes.io.namespace is not a string");
  ExpectDenied(Sa(R"({"kubernetes.io/serviceaccount/namespace":["default"]})").status(),
               "JWT claim kubernetes.io/serviceaccount/namespace is not a string");
}

}  // namespace
}  // namespace strongroom::engines::jwt
