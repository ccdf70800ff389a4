// Keys, C2SP signed notes and strongroom checkpoints (audit/keys.h, note.h, checkpoint.h).
#include "audit/note.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/encoding.h"
#include "audit/keys.h"
#include "tests/unit/audit/test_log.h"

namespace strongroom::audit {
namespace {

using testing::Must;
using testing::MustKey;
using testing::MustPublic;

Checkpoint SampleCheckpoint() {
  Checkpoint cp;
  cp.device_id = "file";
  cp.node_id = "node-1";
  cp.tree_size = 42;
  cp.root = Sha256("root");
  cp.head_seq = 50;
  cp.head_hash = Sha256("head");
  cp.time = "2024-05-01T12:00:00.123456789Z";
  return cp;
}

TEST(Encoding, Base64IsStrict) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("Zm9").has_value());   // missing padding
  EXPECT_FALSE(Base64Decode("Zm9=").has_value());  // non-zero trailing bits
  EXPECT_FALSE(Base64Decode("Zg=a").has_value());
  EXPECT_FALSE(Base64Decode("Z===").has_value());
  EXPECT_FALSE(Base64Decode("Zg==Zg==").has_value());
  EXPECT_FALSE(Base64Decode("Zm 9").has_value());
  EXPECT_FALSE(HashFromHex(std::string(64, 'A')).has_value());  // uppercase refused
  EXPECT_TRUE(HashFromHex(std::string(64, 'a')).has_value());
  EXPECT_EQ(ParseDecimalU64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseDecimalU64("18446744073709551616").has_value());
  EXPECT_FALSE(ParseDecimalU64("01").has_value());
  EXPECT_FALSE(ParseDecimalU64("").has_value());
  EXPECT_FALSE(ParseDecimalU64("-1").has_value());
}

TEST(Keys, PemRoundTripAndKeyIds) {
  for (KeyType type : {KeyType::kEcdsaP256, KeyType::kEd25519}) {
    PrivateKey priv = MustKey(type);
    PublicKey pub = MustPublic(priv);
    Result<PublicKey> again = PublicKey::FromPem(pub.ToPem());
    ASSERT_TRUE(again.ok()) << again.message();
    EXPECT_EQ(again->spki_der(), pub.spki_der());
    EXPECT_EQ(again->KeyId("x"), pub.KeyId("x"));
    const std::string sig = Must(priv.Sign("message"));
    EXPECT_TRUE(again->Verify("message", sig));
    EXPECT_FALSE(again->Verify("messagf", sig));
    Result<PrivateKey> reloaded = PrivateKey::FromPem(priv.ToPem());
    ASSERT_TRUE(reloaded.ok());
    EXPECT_TRUE(pub.Verify("m", Must(reloaded->Sign("m"))));
  }
}

TEST(Keys, KeyIdFollowsC2sp) {
  // Ed25519: SHA-256(name || "\n" || 0x01 || raw key)[:4]; the raw key ends the SPKI.
  Result<PrivateKey> ed = PrivateKey::Ed25519FromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(ed.ok());
  PublicKey pub = MustPublic(*ed);
  const std::string raw = pub.spki_der().substr(pub.spki_der().size() - 32);
  const Hash h = Sha256({"strongroom-audit/d/n", "\n", "\x01", raw});
  const uint32_t want =
      (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
  EXPECT_EQ(pub.KeyId("strongroom-audit/d/n"), want);
  EXPECT_NE(pub.KeyId("strongroom-audit/d/n"), pub.KeyId("strongroom-audit/d/m"));
  // ECDSA: SHA-256(SPKI)[:4], independent of the name.
  PublicKey ec = MustPublic(MustKey(KeyType::kEcdsaP256));
  const Hash e = Sha256(ec.spki_der());
  EXPECT_EQ(ec.KeyId("a"),
            (uint32_t{e[0]} << 24) | (uint32_t{e[1]} << 16) | (uint32_t{e[2]} << 8) | e[3]);
  EXPECT_EQ(ec.KeyId("a"), ec.KeyId("b"));
}

TEST(Keys, RejectsOtherKeyTypes) {
  Result<PrivateKey> rsa_free = PrivateKey::Generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(rsa_free.ok());
  // A P-384 key.
  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  ASSERT_NE(p384, nullptr);
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(p384, &der);
  ASSERT_GT(len, 0);
  Result<PublicKey> k = PublicKey::FromDer(std::string(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  EVP_PKEY_free(p384);
  EXPECT_FALSE(k.ok());
  EXPECT_NE(k.message().find("want P-256"), std::string::npos) << k.message();
  EXPECT_FALSE(
      PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(PublicKey::FromPem("").ok());
}

TEST(Keys, EcdsaRawToDer) {
  PrivateKey priv = MustKey(KeyType::kEcdsaP256);
  PublicKey pub = MustPublic(priv);
  for (int i = 0; i < 20; ++i) {
    const std::string msg = "checkpoint " + std::to_string(i);
    const std::string der = Must(priv.Sign(msg));
    // What a PKCS#11 token returns: r || s, 32 bytes each.
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    ASSERT_NE(sig, nullptr);
    unsigned char raw[64];
    ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32), 32);
    ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32), 32);
    ECDSA_SIG_free(sig);
    const std::string back = Must(EcdsaRawToDer(std::string(reinterpret_cast<char*>(raw), 64)));
    EXPECT_EQ(back, der);
    EXPECT_TRUE(pub.Verify(msg, back));
  }
  EXPECT_FALSE(EcdsaRawToDer("short").ok());
}

TEST(SignedNote, ParsesTheSpecExample) {
  const std::string note =
      "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \xC3\xA8 "
      "subito sera.\n\n\xE2\x80\x94 quasimodo.example/salvatore "
      "NnugSzTjtVAewIS+Z/iJhUPeFDkO/"
      "5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
  Result<SignedNote> parsed = ParseSignedNote(note);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(parsed->text,
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \xC3\xA8 "
            "subito sera.\n");
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].key_name, "quasimodo.example/salvatore");
  EXPECT_EQ(parsed->signatures[0].key_id, 0x367ba04bu);
  EXPECT_EQ(parsed->signatures[0].signature.size(), 64u);
}

TEST(SignedNote, RejectsMalformedNotes) {
  const std::string sig = "\xE2\x80\x94 k AAAAAAA=\n";
  EXPECT_TRUE(ParseSignedNote("text\n\n" + sig).ok());
  EXPECT_FALSE(ParseSignedNote("text\n\n").ok());                                  // no signatures
  EXPECT_FALSE(ParseSignedNote("text\n" + sig).ok());                              // no blank line
  EXPECT_FALSE(ParseSignedNote("text\n\n" + sig.substr(0, sig.size() - 1)).ok());  // no newline
  EXPECT_FALSE(ParseSignedNote("te\txt\n\n" + sig).ok());                     // control character
  EXPECT_FALSE(ParseSignedNote("text\n\n- k AAAAAAA=\n").ok());               // not an em dash
  EXPECT_FALSE(ParseSignedNote("text\n\n\xE2\x80\x94 k+x AAAAAAA=\n").ok());  // '+' in name
  EXPECT_FALSE(ParseSignedNote("text\n\n\xE2\x80\x94 k\xC2\xA0x AAAAAAA=\n").ok());  // NBSP
  EXPECT_FALSE(ParseSignedNote("text\n\n\xE2\x80\x94 k AAAA\n").ok());               // < 5 bytes
  EXPECT_FALSE(ParseSignedNote("text\n\n\xE2\x80\x94 k AAAAAAA\n").ok());            // bad base64
  EXPECT_FALSE(ParseSignedNote("te\xFFxt\n\n" + sig).ok());  // invalid UTF-8
  std::string many = "text\n\n";
  for (size_t i = 0; i <= kMaxNoteSignatures; ++i) many += sig;
  EXPECT_FALSE(ParseSignedNote(many).ok());
}

TEST(Checkpoint, FormatAndParse) {
  const Checkpoint cp = SampleCheckpoint();
  const std::string text = Must(FormatCheckpointText(cp));
  EXPECT_EQ(text, "strongroom-audit/file/node-1\n42\n" + Base64Encode(AsBytes(cp.root)) +
                      "\nhead 50 " + HexEncode(cp.head_hash) +
                      "\ntime 2024-05-01T12:00:00.123456789Z\n");
  Result<Checkpoint> back = ParseCheckpointText(text);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, cp);
  // Every line is checked.
  for (const std::string& bad : {
           std::string("other/file/node-1\n42\n"),
           std::string("strongroom-audit/file\n42\n"),
           std::string("strongroom-audit/fi le/node-1\n42\n"),
       }) {
    EXPECT_FALSE(ParseCheckpointText(bad + text.substr(text.find("\n42\n") + 4)).ok()) << bad;
  }
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_FALSE(ParseCheckpointText(replace("\n42\n", "\n042\n")).ok());
  EXPECT_FALSE(ParseCheckpointText(replace("head 50", "head 050")).ok());
  EXPECT_FALSE(ParseCheckpointText(replace("head 50", "heads 50")).ok());
  EXPECT_FALSE(ParseCheckpointText(replace("time ", "time  ")).ok());
  EXPECT_FALSE(ParseCheckpointText(text + "extra\n").ok());
  EXPECT_FALSE(ParseCheckpointText(text.substr(0, text.size() - 1)).ok());
  Checkpoint bad_id = cp;
  bad_id.device_id = "a/b";
  EXPECT_FALSE(FormatCheckpointText(bad_id).ok());
}

TEST(Checkpoint, OpenChecksTheSignature) {
  PrivateKey key = MustKey(KeyType::kEcdsaP256);
  PrivateKey other = MustKey(KeyType::kEd25519);
  std::vector<PublicKey> trusted;
  trusted.push_back(MustPublic(key));
  const std::string body = Must(FormatCheckpointText(SampleCheckpoint()));
  const std::string note = Must(SignCheckpoint(body, key));
  Result<Checkpoint> opened = OpenCheckpoint(note, trusted);
  ASSERT_TRUE(opened.ok()) << opened.message();
  EXPECT_EQ(*opened, SampleCheckpoint());

  // Signed only by an unknown key: rejected.
  const std::string by_other = Must(SignCheckpoint(body, other));
  EXPECT_FALSE(OpenCheckpoint(by_other, trusted).ok());
  // Extra signature from an unknown key (a witness, say): ignored.
  PublicKey other_pub = MustPublic(other);
  const std::string cosigned = Must(AttachSignature(note, other_pub, Must(other.Sign(body))));
  EXPECT_TRUE(OpenCheckpoint(cosigned, trusted).ok());
  // Both keys trusted (rotation): fine either way.
  trusted.push_back(MustPublic(other));
  EXPECT_TRUE(OpenCheckpoint(by_other, trusted).ok());
  trusted.pop_back();
  // A bad signature from the trusted key rejects the note even next to a good one.
  std::string corrupted = note;
  const size_t sig_at = corrupted.rfind(' ') + 10;
  corrupted[sig_at] = corrupted[sig_at] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(OpenCheckpoint(corrupted, trusted).ok());
  // The signature covers the text: an edited tree size fails.
  std::string edited = note;
  edited.replace(edited.find("\n42\n"), 4, "\n43\n");
  EXPECT_FALSE(OpenCheckpoint(edited, trusted).ok());
  // Signed under a different key name than the origin: not our signature.
  const std::string wrong_name =
      body + "\n" +
      FormatNoteSignatureLine("other-name", MustPublic(key).KeyId("x"), Must(key.Sign(body)));
  EXPECT_FALSE(OpenCheckpoint(wrong_name, trusted).ok());
  // AttachSignature refuses a signature that does not verify.
  EXPECT_FALSE(AttachSignature(body, MustPublic(key), Must(other.Sign(body))).ok());
}

}  // namespace
}  // namespace strongroom::audit
