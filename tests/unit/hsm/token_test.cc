// Tests for hsm/ against a real SoftHSM2 token; every test that touches a token gets its own,
// freshly initialised one (SoftHsmToken), so tests cannot see each other's keys.
#include "hsm/token.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hsm/rv.h"
#include "tests/support/softhsm_token.h"

namespace strongroom::hsm {
namespace {

using test_support::SoftHsmToken;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLabel[] = "sr-unit";
constexpr char kPin[] = "user-pin-1234";
constexpr char kSoPin[] = "so-pin-5678";

std::string Str(std::string_view v) { return std::string(v); }
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = 0x9e3779b9u ^ seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;  // deterministic, non-repeating bytes
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// rv.h

TEST(RvName, NamesCommonCodes) {
  EXPECT_EQ(Str(RvName(CKR_OK)), "CKR_OK");
  EXPECT_EQ(Str(RvName(CKR_PIN_INCORRECT)), "CKR_PIN_INCORRECT");
  EXPECT_EQ(Str(RvName(CKR_ATTRIBUTE_SENSITIVE)), "CKR_ATTRIBUTE_SENSITIVE");
  EXPECT_EQ(Str(RvName(CKR_WRAPPED_KEY_INVALID)), "CKR_WRAPPED_KEY_INVALID");
  EXPECT_EQ(Str(RvName(CKR_CRYPTOKI_ALREADY_INITIALIZED)), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
  EXPECT_EQ(Str(RvName(CKR_VENDOR_DEFINED)), "CKR_VENDOR_DEFINED");
}

TEST(RvName, NamesPkcs11V3CodesAndOasisNumbering) {
  EXPECT_EQ(Str(RvName(0x201)), "CKR_TOKEN_RESOURCE_EXCEEDED");
  EXPECT_EQ(Str(RvName(0x202)), "CKR_OPERATION_CANCEL_FAILED");
  // p11-kit 0.24.1 numbers CKR_PIN_TOO_WEAK 0x1c3; OASIS headers (and SoftHSM2) use 0x1b8.
  EXPECT_EQ(Str(RvName(0x1b8)), "CKR_PIN_TOO_WEAK");
  EXPECT_EQ(Str(RvName(CKR_PIN_TOO_WEAK)), "CKR_PIN_TOO_WEAK");
}

TEST(RvName, UnknownCodeIsHex) {
  EXPECT_EQ(Str(RvName(0xAB)), "CKR_0x000000AB");
  EXPECT_EQ(Str(RvName(0x80001234)), "CKR_0x80001234");
  // The returned view stays valid and stable.
  std::string_view first = RvName(0xAB);
  RvName(0xAC);
  EXPECT_EQ(Str(first), "CKR_0x000000AB");
}

// Reads every `#define CKR_NAME (value)` from the very header we compile against, so a code
// missing from rv.cc (for instance after a p11-kit upgrade) fails here.
std::map<std::string, CK_RV> HeaderCodes() {
  std::ifstream in(SR_P11KIT_PKCS11_H);
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, CK_RV> codes;
  const std::regex def(R"(#define\s+(CKR_[A-Z0-9_]+)\s+\(([^\n]*)\)\s*\n)");
  const std::string body = text.str();
  for (std::sregex_iterator it(body.begin(), body.end(), def), end; it != end; ++it) {
    const std::string name = (*it)[1];
    const std::string value = (*it)[2];
    if (value.find("<<") != std::string::npos) {
      codes[name] = CKR_VENDOR_DEFINED;  // "(unsigned long) (1UL << 31)"
    } else {
      codes[name] = std::strtoul(value.c_str(), nullptr, 0);
    }
  }
  return codes;
}

TEST(RvName, CoversEveryCodeInP11KitHeader) {
  const auto codes = HeaderCodes();
  ASSERT_GE(codes.size(), 90u) << "could not parse " << SR_P11KIT_PKCS11_H;
  for (const auto& [name, value] : codes) {
    EXPECT_EQ(Str(RvName(value)), name) << "value 0x" << std::hex << value;
  }
}

TEST(RvToStatus, MapsEveryHeaderCodeByMeaning) {
  for (const auto& [name, value] : HeaderCodes()) {
    const absl::Status s = RvToStatus(value, "C_Test");
    if (value == CKR_OK) {
      EXPECT_TRUE(s.ok());
      continue;
    }
    EXPECT_EQ(Msg(s), "C_Test: " + name);
    if (value != CKR_VENDOR_DEFINED) {
      EXPECT_NE(s.code(), absl::StatusCode::kUnknown) << name << " has no mapping";
    }
  }
  EXPECT_EQ(RvToStatus(CKR_PIN_INCORRECT, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(RvToStatus(CKR_TEMPLATE_INCONSISTENT, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RvToStatus(CKR_OBJECT_HANDLE_INVALID, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RvToStatus(CKR_DEVICE_ERROR, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RvToStatus(CKR_HOST_MEMORY, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RvToStatus(CKR_GENERAL_ERROR, "x").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(RvToStatus(0x80000042, "x").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(Msg(RvToStatus(0xAB, "C_Foo")), "C_Foo: CKR_0x000000AB");
}

// ---------------------------------------------------------------------------------------------
// ResolvePin

class ResolvePinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sr-pin-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  static std::string AsString(const SecureBytes& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::string dir_;
};

TEST_F(ResolvePinTest, Literal) {
  auto pin = ResolvePin("s3cret-pin");
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(AsString(*pin), "s3cret-pin");
}

TEST_F(ResolvePinTest, EmptyLiteralIsRejected) {
  EXPECT_EQ(ResolvePin("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ResolvePinTest, FromEnvironment) {
  setenv("SR_TEST_PIN_VAR", "env-pin-42", 1);
  auto pin = ResolvePin("env://SR_TEST_PIN_VAR");
  unsetenv("SR_TEST_PIN_VAR");
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(AsString(*pin), "env-pin-42");
}

TEST_F(ResolvePinTest, MissingOrEmptyEnvironmentVariable) {
  unsetenv("SR_TEST_PIN_UNSET");
  auto missing = ResolvePin("env://SR_TEST_PIN_UNSET");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(missing.status()), HasSubstr("SR_TEST_PIN_UNSET"));

  setenv("SR_TEST_PIN_EMPTY", "", 1);
  auto empty = ResolvePin("env://SR_TEST_PIN_EMPTY");
  unsetenv("SR_TEST_PIN_EMPTY");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(ResolvePin("env://").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ResolvePinTest, FromFileFirstLineWithoutNewline) {
  auto pin = ResolvePin("file://" + WriteFile("pin", "file-pin-7\nsecond line\n"));
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(AsString(*pin), "file-pin-7");

  auto crlf = ResolvePin("file://" + WriteFile("pin-crlf", "crlf-pin\r\n"));
  ASSERT_TRUE(crlf.ok()) << crlf.status();
  EXPECT_EQ(AsString(*crlf), "crlf-pin");

  auto no_newline = ResolvePin("file://" + WriteFile("pin-bare", "bare-pin"));
  ASSERT_TRUE(no_newline.ok()) << no_newline.status();
  EXPECT_EQ(AsString(*no_newline), "bare-pin");
}

TEST_F(ResolvePinTest, MissingEmptyOrHugeFile) {
  auto missing = ResolvePin("file://" + dir_ + "/does-not-exist");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(missing.status()), HasSubstr("does-not-exist"));

  EXPECT_EQ(ResolvePin("file://" + WriteFile("empty", "")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolvePin("file://" + WriteFile("blank", "\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto huge = ResolvePin("file://" + WriteFile("huge", std::string(10000, 'x')));
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(huge.status()), Not(HasSubstr("xxxx")));
}

// ---------------------------------------------------------------------------------------------
// Module / Token::Open

// A fresh token per test, not opened yet.
class FreshTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = SoftHsmToken::Create(kLabel, kPin, kSoPin);
    ASSERT_TRUE(t.ok()) << t.status();
    softhsm_ = std::move(*t);
  }
  TokenConfig Config() const {
    return TokenConfig{softhsm_->lib(), softhsm_->label(), std::nullopt, softhsm_->pin()};
  }
  std::unique_ptr<SoftHsmToken> softhsm_;
};

TEST_F(FreshTokenTest, SupportHelperLaysOutConf) {
  EXPECT_EQ(softhsm_->conf_path(), softhsm_->dir() + "/softhsm2.conf");
  EXPECT_EQ(std::string(getenv("SOFTHSM2_CONF")), softhsm_->conf_path());
  EXPECT_EQ(softhsm_->env_assignment(), "SOFTHSM2_CONF=" + softhsm_->conf_path());
  std::ifstream conf(softhsm_->conf_path());
  std::stringstream text;
  text << conf.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("directories.tokendir = " + softhsm_->dir()));
  EXPECT_THAT(text.str(), HasSubstr("objectstore.backend = file"));
}

// Integration tests start the daemon as a child with only env_assignment() to find the token.
TEST_F(FreshTokenTest, ChildProcessFindsTokenThroughConfPath) {
  const std::string out_path = softhsm_->dir() + "/show-slots.txt";
  const std::string env_conf = softhsm_->env_assignment();
  const std::string env_path = "PATH=/usr/bin:/bin";
  const std::string cmd = "softhsm2-util --show-slots > '" + out_path + "' 2>&1";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // A clean environment: nothing inherited but the conf assignment.
    char* const argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                          const_cast<char*>(cmd.c_str()), nullptr};
    char* const envp[] = {const_cast<char*>(env_conf.c_str()), const_cast<char*>(env_path.c_str()),
                          nullptr};
    execve("/bin/sh", argv, envp);
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream out(out_path);
  std::stringstream text;
  text << out.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr(kLabel));
}

TEST_F(FreshTokenTest, OpensWithCorrectPin) {
  auto token = Token::Open(Config());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ((*token)->label(), kLabel);
}

TEST_F(FreshTokenTest, OpensWithPinFromEnvAndFile) {
  setenv("SR_TEST_TOKEN_PIN", kPin, 1);
  TokenConfig config = Config();
  config.pin_spec = "env://SR_TEST_TOKEN_PIN";
  {
    auto token = Token::Open(config);
    ASSERT_TRUE(token.ok()) << token.status();
  }
  unsetenv("SR_TEST_TOKEN_PIN");
  const std::string pin_file = softhsm_->dir() + "/pin";
  std::ofstream(pin_file) << kPin << "\n";
  config.pin_spec = "file://" + pin_file;
  auto token = Token::Open(config);
  ASSERT_TRUE(token.ok()) << token.status();
}

TEST_F(FreshTokenTest, WrongPinIsPermissionDeniedNamingTheCode) {
  TokenConfig config = Config();
  config.pin_spec = "wrong-pin-9999";
  auto token = Token::Open(config);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Msg(token.status()), "C_Login on token \"sr-unit\": CKR_PIN_INCORRECT");
  EXPECT_THAT(Msg(token.status()), Not(HasSubstr("wrong-pin")));
  // The failed attempt released the library: the right PIN works next.
  EXPECT_TRUE(Token::Open(Config()).ok());
}

TEST_F(FreshTokenTest, UnknownLabelIsNotFound) {
  TokenConfig config = Config();
  config.token_label = "no-such-token";
  auto token = Token::Open(config);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Msg(token.status()), "no token labelled \"no-such-token\" in " + softhsm_->lib());
}

TEST_F(FreshTokenTest, MissingPinSourceFailsBeforeLoading) {
  TokenConfig config = Config();
  config.pin_spec = "env://SR_TEST_DEFINITELY_UNSET";
  unsetenv("SR_TEST_DEFINITELY_UNSET");
  EXPECT_EQ(Token::Open(config).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FreshTokenTest, NeedsLabelOrSlot) {
  TokenConfig config = Config();
  config.token_label.clear();
  EXPECT_EQ(Token::Open(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FreshTokenTest, OpensBySlotAndChecksLabel) {
  CK_SLOT_ID slot = 0;
  {
    auto module = Module::Load(softhsm_->lib());
    ASSERT_TRUE(module.ok()) << module.status();
    auto found = (*module)->FindSlotByTokenLabel(kLabel);
    ASSERT_TRUE(found.ok()) << found.status();
    slot = *found;
  }
  TokenConfig config = Config();
  config.slot = slot;
  config.token_label.clear();
  auto by_slot = Token::Open(config);
  ASSERT_TRUE(by_slot.ok()) << by_slot.status();
  EXPECT_EQ((*by_slot)->label(), kLabel);
  by_slot->reset();

  config.token_label = "another-label";
  auto mismatch = Token::Open(config);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(mismatch.status()), HasSubstr("another-label"));
}

TEST(ModuleLoad, MissingLibraryIsNotFound) {
  auto module = Module::Load("/nonexistent/libpkcs11.so");
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(module.status()), HasSubstr("/nonexistent/libpkcs11.so"));
}

TEST(ModuleLoad, UnloadableFileCarriesDlerror) {
  const std::string path = "/tmp/sr-not-a-library-" + std::to_string(getpid()) + ".so";
  std::ofstream(path) << std::string(4096, 'x');  // long enough for dlopen to read a header
  auto module = Module::Load(path);
  std::remove(path.c_str());
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(module.status()), HasSubstr("cannot load PKCS#11 module " + path + ": "));
  EXPECT_THAT(Msg(module.status()), HasSubstr("invalid ELF header"));  // dlerror's own words
}

TEST(ModuleLoad, LibraryWithoutFunctionListIsInvalidArgument) {
  // Any shared library that is not a PKCS#11 module; libz is on every Debian system.
  const char* kNotPkcs11 = "/lib/x86_64-linux-gnu/libz.so.1";
  if (access(kNotPkcs11, R_OK) != 0) GTEST_SKIP() << kNotPkcs11 << " not present";
  auto module = Module::Load(kNotPkcs11);
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(module.status()), HasSubstr("no C_GetFunctionList"));
}

TEST_F(FreshTokenTest, SecondInitializeIsRefusedAsMisuse) {
  auto token = Token::Open(Config());
  ASSERT_TRUE(token.ok()) << token.status();
  auto second = Module::Load(softhsm_->lib());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(second.status()), HasSubstr("CKR_CRYPTOKI_ALREADY_INITIALIZED"));
  // The refused load must not have finalised the library under the open token.
  EXPECT_TRUE((*token)->GenerateKek("still-works").ok());
}

// SoftHSM2 reads SOFTHSM2_CONF in C_Initialize. This pins the library in memory (so dlclose
// cannot hide the question by unloading it) and checks that C_Finalize + C_Initialize picks up
// a different token directory.
TEST(SoftHsmConf, FinalizeThenInitializeRereadsConf) {
  void* pin = dlopen(SoftHsmToken::kSoftHsmLib, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(pin, nullptr) << dlerror();
  {
    auto first = SoftHsmToken::Create("conf-a", kPin, kSoPin);
    ASSERT_TRUE(first.ok()) << first.status();
    auto token = Token::Open({(*first)->lib(), "conf-a", std::nullopt, kPin});
    ASSERT_TRUE(token.ok()) << token.status();
    ASSERT_TRUE((*token)->GenerateKek("kek-in-a").ok());
  }
  {
    auto second = SoftHsmToken::Create("conf-b", kPin, kSoPin);
    ASSERT_TRUE(second.ok()) << second.status();
    // conf-a's directory is gone; only a re-read conf can find conf-b.
    auto old = Token::Open({(*second)->lib(), "conf-a", std::nullopt, kPin});
    EXPECT_EQ(old.status().code(), absl::StatusCode::kNotFound) << old.status();
    auto token = Token::Open({(*second)->lib(), "conf-b", std::nullopt, kPin});
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ((*token)->FindSecretKey("kek-in-a").status().code(), absl::StatusCode::kNotFound);
  }
  dlclose(pin);
}

// ---------------------------------------------------------------------------------------------
// Key custody: a fresh token, opened.

class TokenTest : public FreshTokenTest {
 protected:
  void SetUp() override {
    FreshTokenTest::SetUp();
    if (HasFatalFailure()) return;
    auto token = Token::Open(Config());
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = std::move(*token);
  }
  void TearDown() override { token_.reset(); }  // before the token directory goes away

  CK_OBJECT_HANDLE Kek(const std::string& label = "kek") {
    auto kek = token_->GenerateKek(label);
    EXPECT_TRUE(kek.ok()) << kek.status();
    return kek.ok() ? *kek : CK_INVALID_HANDLE;
  }

  // An AES-256 session key made through the raw function list, with the given flags.
  CK_OBJECT_HANDLE RawAesKey(const std::string& label, bool extractable, bool encrypt,
                             bool sensitive = true, CK_ULONG bytes = 32) {
    auto lease = token_->Acquire();
    EXPECT_TRUE(lease.ok()) << lease.status();
    if (!lease.ok()) return CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL ext = extractable ? CK_TRUE : CK_FALSE;
    CK_BBOOL enc = encrypt ? CK_TRUE : CK_FALSE;
    CK_BBOOL sens = sensitive ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_VALUE_LEN, &bytes, sizeof bytes},
        {CKA_TOKEN, &no, sizeof no},
        {CKA_SENSITIVE, &sens, sizeof sens},
        {CKA_EXTRACTABLE, &ext, sizeof ext},
        {CKA_ENCRYPT, &enc, sizeof enc},
        {CKA_DECRYPT, &no, sizeof no},
        {CKA_WRAP, &yes, sizeof yes},
        {CKA_UNWRAP, &yes, sizeof yes},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    EXPECT_EQ(Str(RvName(
                  lease->fn()->C_GenerateKey(lease->handle(), &mech, tmpl, std::size(tmpl), &key))),
              "CKR_OK");
    return key;
  }

  // Number of objects of `cls` visible to the logged-in user (token and session objects).
  size_t CountObjects(CK_OBJECT_CLASS cls) {
    auto lease = token_->Acquire();
    EXPECT_TRUE(lease.ok());
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}};
    EXPECT_EQ(lease->fn()->C_FindObjectsInit(lease->handle(), tmpl, 1), CKR_OK);
    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = 0;
    EXPECT_EQ(lease->fn()->C_FindObjects(lease->handle(), found, std::size(found), &n), CKR_OK);
    EXPECT_EQ(lease->fn()->C_FindObjectsFinal(lease->handle()), CKR_OK);
    return n;
  }

  std::unique_ptr<Token> token_;
};

TEST_F(TokenTest, GenerateKekHasCustodyAttributes) {
  const CK_OBJECT_HANDLE kek = Kek();
  auto attrs = token_->GetKeyAttributes(kek);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(attrs->object_class, CKO_SECRET_KEY);
  EXPECT_EQ(attrs->key_type, CKK_AES);
  EXPECT_EQ(attrs->value_len, 32u);
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->always_sensitive);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_FALSE(attrs->encrypt);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_FALSE(attrs->sign);
  EXPECT_FALSE(attrs->verify);
  EXPECT_TRUE(attrs->wrap);
  EXPECT_TRUE(attrs->unwrap);
  EXPECT_TRUE(token_->CheckKekPolicy(kek).ok());

  // And it can be found again by label.
  auto found = token_->FindSecretKey("kek");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, kek);
}

// The audit MAC key: a token object that signs (HMAC) and does nothing else, never readable.
TEST_F(TokenTest, GenerateMacKeyHasCustodyAttributesAndMacs) {
  auto key = token_->GenerateMacKey("audit-mac");
  ASSERT_TRUE(key.ok()) << key.status();
  auto attrs = token_->GetKeyAttributes(*key);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(attrs->object_class, CKO_SECRET_KEY);
  EXPECT_EQ(attrs->key_type, CKK_GENERIC_SECRET);
  EXPECT_EQ(attrs->value_len, 32u);
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_TRUE(attrs->sign);
  EXPECT_FALSE(attrs->encrypt);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_FALSE(attrs->wrap);
  EXPECT_FALSE(attrs->unwrap);
  const std::vector<uint8_t> data = {'b', 'a', 't', 'c', 'h'};
  auto a = token_->Hmac(*key, CKM_SHA256_HMAC, data);
  auto b = token_->Hmac(*key, CKM_SHA256_HMAC, data);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(*a, *b);
  auto found = token_->FindSecretKey("audit-mac");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, *key);
  EXPECT_EQ(token_->GenerateMacKey("audit-mac").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(TokenTest, GenerateKekTwiceIsAlreadyExists) {
  Kek("dup");
  auto again = token_->GenerateKek("dup");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(Msg(again.status()), HasSubstr("\"dup\""));
}

TEST_F(TokenTest, KekValueIsSensitiveFromAnotherSession) {
  const CK_OBJECT_HANDLE kek = Kek();
  auto first = token_->Acquire();
  auto second = token_->Acquire();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_NE(first->handle(), second->handle());
  uint8_t buf[64];
  CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof buf};
  EXPECT_EQ(Str(RvName(second->fn()->C_GetAttributeValue(second->handle(), kek, &value, 1))),
            "CKR_ATTRIBUTE_SENSITIVE");
  EXPECT_EQ(value.ulValueLen, CK_UNAVAILABLE_INFORMATION);
}

TEST_F(TokenTest, KekAttributesCannotBeChanged) {
  const CK_OBJECT_HANDLE kek = Kek();
  auto lease = token_->Acquire();
  ASSERT_TRUE(lease.ok());
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE enc = {CKA_ENCRYPT, &yes, sizeof yes};
  EXPECT_NE(lease->fn()->C_SetAttributeValue(lease->handle(), kek, &enc, 1), CKR_OK);
  auto attrs = token_->GetKeyAttributes(kek);
  ASSERT_TRUE(attrs.ok());
  EXPECT_FALSE(attrs->encrypt);
}

TEST_F(TokenTest, FindSecretKeyNotFoundAndAmbiguous) {
  EXPECT_EQ(token_->FindSecretKey("absent").status().code(), absl::StatusCode::kNotFound);
  RawAesKey("twin", false, false);
  RawAesKey("twin", false, false);
  auto twin = token_->FindSecretKey("twin");
  EXPECT_EQ(twin.status().code(), absl::StatusCode::kFailedPrecondition) << twin.status();
  // GenerateKek refuses the label too rather than adding a third.
  EXPECT_EQ(token_->GenerateKek("twin").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(TokenTest, CheckKekPolicyRefusesExtractableKey) {
  const CK_OBJECT_HANDLE key = RawAesKey("leaky", /*extractable=*/true, /*encrypt=*/false);
  const absl::Status st = token_->CheckKekPolicy(key);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Msg(st), "KEK \"leaky\" is extractable (CKA_EXTRACTABLE=true); refusing to use it");
}

TEST_F(TokenTest, CheckKekPolicyRefusesEncryptingKey) {
  const CK_OBJECT_HANDLE key = RawAesKey("dual-use", /*extractable=*/false, /*encrypt=*/true);
  const absl::Status st = token_->CheckKekPolicy(key);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Msg(st),
            "KEK \"dual-use\" may encrypt data directly (CKA_ENCRYPT=true); refusing to use it");
}

TEST_F(TokenTest, CheckKekPolicyListsEveryReason) {
  const CK_OBJECT_HANDLE key =
      RawAesKey("bad", /*extractable=*/true, /*encrypt=*/true, /*sensitive=*/false, 16);
  const absl::Status st = token_->CheckKekPolicy(key);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("CKA_VALUE_LEN=16"));
  EXPECT_THAT(Msg(st), HasSubstr("CKA_EXTRACTABLE=true"));
  EXPECT_THAT(Msg(st), HasSubstr("CKA_SENSITIVE=false"));
  EXPECT_THAT(Msg(st), HasSubstr("CKA_ENCRYPT=true"));
}

TEST_F(TokenTest, CheckKekPolicyOnMissingHandleIsNotFound) {
  EXPECT_EQ(token_->CheckKekPolicy(123456).code(), absl::StatusCode::kNotFound);
}

class WrapRoundTrip : public TokenTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(WrapRoundTrip, UnwrapReturnsExactlyTheSecret) {
  const CK_OBJECT_HANDLE kek = Kek();
  const std::vector<uint8_t> secret = Pattern(GetParam(), 1);
  auto blob = token_->WrapSecret(kek, secret);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_GE(blob->size(), secret.size() + 8);
  EXPECT_LE(blob->size(), secret.size() + 16);
  auto back = token_->UnwrapSecret(kek, *blob);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->size(), secret.size());
  EXPECT_TRUE(back->Equals(secret));
}

// 1 and 1000 are not multiples of 8 (SoftHSM2 would hand back RFC 5649 padding), 65536 is the
// cap, 40000 a keyring-sized value.
INSTANTIATE_TEST_SUITE_P(Sizes, WrapRoundTrip,
                         ::testing::Values(1, 7, 8, 32, 1000, 40000, kMaxWrapSecretSize));

TEST_F(TokenTest, SecretsEndingInZerosOrMarkerSurvive) {
  const CK_OBJECT_HANDLE kek = Kek();
  for (const std::vector<uint8_t>& secret :
       {std::vector<uint8_t>{0}, std::vector<uint8_t>(8, 0), std::vector<uint8_t>{1, 0x80},
        std::vector<uint8_t>{0x80, 0, 0}, std::vector<uint8_t>(15, 0x80)}) {
    auto blob = token_->WrapSecret(kek, secret);
    ASSERT_TRUE(blob.ok()) << blob.status();
    auto back = token_->UnwrapSecret(kek, *blob);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(back->Equals(secret)) << "size " << secret.size();
  }
}

TEST_F(TokenTest, WrapRejectsEmptyAndOversizedSecrets) {
  const CK_OBJECT_HANDLE kek = Kek();
  EXPECT_EQ(token_->WrapSecret(kek, {}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<uint8_t> big(kMaxWrapSecretSize + 1, 1);
  EXPECT_EQ(token_->WrapSecret(kek, big).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenTest, AlteredBlobFailsToUnwrap) {
  const CK_OBJECT_HANDLE kek = Kek();
  const std::vector<uint8_t> secret = Pattern(48, 2);
  auto blob = token_->WrapSecret(kek, secret);
  ASSERT_TRUE(blob.ok()) << blob.status();
  for (size_t pos : {size_t{0}, blob->size() / 2, blob->size() - 1}) {
    std::vector<uint8_t> bad = *blob;
    bad[pos] ^= 0x01;
    auto out = token_->UnwrapSecret(kek, bad);
    ASSERT_FALSE(out.ok()) << "flipped byte " << pos;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(out.status()), ::testing::StartsWith("unwrap failed: "));
  }
  // Truncated, extended and garbage blobs too.
  std::vector<uint8_t> cut(blob->begin(), blob->end() - 8);
  EXPECT_EQ(token_->UnwrapSecret(kek, cut).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> odd(blob->begin(), blob->end() - 1);
  EXPECT_EQ(token_->UnwrapSecret(kek, odd).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token_->UnwrapSecret(kek, {}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<uint8_t> huge(kMaxWrapSecretSize + 64, 0);
  EXPECT_EQ(token_->UnwrapSecret(kek, huge).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenTest, OtherKekCannotUnwrap) {
  const CK_OBJECT_HANDLE kek = Kek("kek-1");
  const CK_OBJECT_HANDLE other = Kek("kek-2");
  auto blob = token_->WrapSecret(kek, Pattern(32, 3));
  ASSERT_TRUE(blob.ok()) << blob.status();
  auto out = token_->UnwrapSecret(other, *blob);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_THAT(Msg(out.status()), ::testing::StartsWith("unwrap failed: "));
}

TEST_F(TokenTest, BlobDoesNotContainPlaintext) {
  const CK_OBJECT_HANDLE kek = Kek();
  const std::vector<uint8_t> secret = Pattern(1000, 4);
  auto blob = token_->WrapSecret(kek, secret);
  ASSERT_TRUE(blob.ok()) << blob.status();
  // No 8-byte window of the secret appears anywhere in the blob.
  for (size_t i = 0; i + 8 <= secret.size(); ++i) {
    auto hit = std::search(blob->begin(), blob->end(), secret.begin() + i, secret.begin() + i + 8);
    ASSERT_EQ(hit, blob->end()) << "plaintext window at " << i;
  }
  // Two wraps of the same secret are identical (key wrap is deterministic), so the blob alone
  // must not be treated as a nonce; it is fine as a key-at-rest format.
  auto again = token_->WrapSecret(kek, secret);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *blob);
}

TEST_F(TokenTest, WrapAndUnwrapLeaveNoTemporaryObjects) {
  const CK_OBJECT_HANDLE kek = Kek();
  ASSERT_EQ(CountObjects(CKO_SECRET_KEY), 1u);
  auto blob = token_->WrapSecret(kek, Pattern(100, 5));
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(CountObjects(CKO_SECRET_KEY), 1u);
  ASSERT_TRUE(token_->UnwrapSecret(kek, *blob).ok());
  EXPECT_EQ(CountObjects(CKO_SECRET_KEY), 1u);
  // Error paths too: a wrap the KEK refuses and an unwrap that fails integrity.
  const CK_OBJECT_HANDLE not_a_kek = RawAesKey("no-wrap", false, false);
  {
    auto lease = token_->Acquire();
    ASSERT_TRUE(lease.ok());
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE wrap = {CKA_WRAP, &no, sizeof no};
    ASSERT_EQ(lease->fn()->C_SetAttributeValue(lease->handle(), not_a_kek, &wrap, 1), CKR_OK);
  }
  EXPECT_FALSE(token_->WrapSecret(not_a_kek, Pattern(10, 6)).ok());
  std::vector<uint8_t> bad = *blob;
  bad[3] ^= 0xff;
  EXPECT_FALSE(token_->UnwrapSecret(kek, bad).ok());
  EXPECT_EQ(CountObjects(CKO_SECRET_KEY), 2u);  // the KEK and no-wrap, nothing else
}

TEST_F(TokenTest, GenerateRandom) {
  std::vector<uint8_t> a(64), b(64);
  ASSERT_TRUE(token_->GenerateRandom(a).ok());
  ASSERT_TRUE(token_->GenerateRandom(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::vector<uint8_t>(64, 0));
  EXPECT_TRUE(token_->GenerateRandom({}).ok());
}

TEST_F(TokenTest, PoolReusesSessionsAndMovesLeases) {
  CK_SESSION_HANDLE first = CK_INVALID_HANDLE;
  {
    auto lease = token_->Acquire();
    ASSERT_TRUE(lease.ok());
    first = lease->handle();
    Token::Lease moved = std::move(*lease);  // the moved-from lease must not return it too
    EXPECT_EQ(moved.handle(), first);
  }
  {
    auto a = token_->Acquire();
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->handle(), first);  // reused, not reopened
    auto b = token_->Acquire();
    ASSERT_TRUE(b.ok());
    EXPECT_NE(b->handle(), first);
    const CK_SESSION_HANDLE b_handle = b->handle();
    *a = std::move(*b);  // a's session goes back to the pool, a now holds b's
    EXPECT_EQ(a->handle(), b_handle);
    auto c = token_->Acquire();
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->handle(), first);
  }
  {
    auto d = token_->Acquire();
    ASSERT_TRUE(d.ok());
    const CK_SESSION_HANDLE discarded = d->handle();
    d->Discard();
    *d = std::move(*token_->Acquire());
    // The discarded session was closed, not pooled.
    CK_SESSION_INFO info;
    EXPECT_EQ(d->fn()->C_GetSessionInfo(discarded, &info), CKR_SESSION_HANDLE_INVALID);
  }
}

TEST_F(TokenTest, PoolServesConcurrentThreads) {
  const CK_OBJECT_HANDLE kek = Kek();
  constexpr int kThreads = 4;
  constexpr int kRoundTrips = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRoundTrips; ++i) {
        const auto secret = Pattern(1 + static_cast<size_t>((t * kRoundTrips + i) * 37 % 500),
                                    static_cast<uint8_t>(t * 64 + i));
        auto blob = token_->WrapSecret(kek, secret);
        if (!blob.ok()) {
          ++failures;
          continue;
        }
        auto back = token_->UnwrapSecret(kek, *blob);
        if (!back.ok() || !back->Equals(secret)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountObjects(CKO_SECRET_KEY), 1u);
}

// PKCS#11 state must never be used across fork(): a forked child gets an error, not a session.
TEST_F(TokenTest, AcquireInForkedChildIsRefused) {
  ::testing::FLAGS_gtest_death_test_style = "fast";  // plain fork(), no re-exec
  EXPECT_EXIT(
      {
        auto lease = token_->Acquire();
        const bool refused = absl::IsFailedPrecondition(lease.status()) &&
                             Msg(lease.status()).find("fork") != std::string::npos;
        // Tearing down the inherited Token must neither crash nor finalise the library.
        token_.reset();
        _exit(refused ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  // The parent is unaffected: still logged in, its sessions still open.
  std::vector<uint8_t> random(16);
  EXPECT_TRUE(token_->GenerateRandom(random).ok());
  EXPECT_TRUE(token_->GenerateKek("after-fork").ok());
}

TEST_F(TokenTest, DestroyingTokenWithOutstandingLeaseAborts) {
  // Re-exec style: the child runs SetUp itself (a forked child could not acquire a lease).
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        auto lease = token_->Acquire();
        if (!lease.ok()) std::_Exit(3);
        // The child dies before its fixture's destructor runs, so it removes its own token
        // directory first.
        std::error_code ec;
        std::filesystem::remove_all(softhsm_->dir(), ec);
        token_.reset();
      },
      "lease\\(s\\) outstanding");
}

}  // namespace
// ---- Audit signing key ---------------------------------------------------------------------

TEST_F(TokenTest, SigningKeyIsGeneratedInsideAndNeverReadable) {
  auto key = token_->GenerateSigningKey("audit");
  ASSERT_TRUE(key.ok()) << key.status();
  auto attrs = token_->GetKeyAttributes(key->private_key);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_EQ(attrs->object_class, CKO_PRIVATE_KEY);
  EXPECT_EQ(attrs->key_type, CKK_EC);
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_TRUE(attrs->always_sensitive);
  EXPECT_TRUE(attrs->never_extractable);
  EXPECT_TRUE(attrs->sign);
  EXPECT_FALSE(attrs->decrypt);
  EXPECT_FALSE(attrs->unwrap);

  // The private value cannot be read, from this session or another one.
  auto lease = token_->Acquire();
  ASSERT_TRUE(lease.ok());
  uint8_t buf[128];
  CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof buf};
  EXPECT_EQ(
      Str(RvName(lease->fn()->C_GetAttributeValue(lease->handle(), key->private_key, &value, 1))),
      "CKR_ATTRIBUTE_SENSITIVE");

  // Found again by label; a second pair with the same label is refused.
  auto found = token_->FindSigningKey("audit");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->private_key, key->private_key);
  EXPECT_EQ(found->public_key, key->public_key);
  EXPECT_EQ(token_->GenerateSigningKey("audit").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(token_->FindSigningKey("other").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenTest, SigningKeySignaturesVerifyWithItsPublicKey) {
  auto key = token_->GenerateSigningKey("audit");
  ASSERT_TRUE(key.ok()) << key.status();
  auto spki = token_->EcPublicKeySpki(key->public_key);
  ASSERT_TRUE(spki.ok()) << spki.status();
  ASSERT_EQ(spki->size(), 91u);  // DER SubjectPublicKeyInfo of a P-256 key

  const unsigned char* p = reinterpret_cast<const unsigned char*>(spki->data());
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki->size()));
  ASSERT_NE(pkey, nullptr);
  const std::string message = "tree size 42";
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(message.data()), message.size(), digest);
  auto sig = token_->SignEcdsa(key->private_key, digest);
  ASSERT_TRUE(sig.ok()) << sig.status();
  ASSERT_EQ(sig->size(), 64u);  // r || s
  // r || s -> DER for OpenSSL.
  ECDSA_SIG* es = ECDSA_SIG_new();
  ECDSA_SIG_set0(es, BN_bin2bn(reinterpret_cast<const uint8_t*>(sig->data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const uint8_t*>(sig->data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(es, &der);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey, nullptr);
  ASSERT_EQ(EVP_PKEY_verify_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_verify(ctx, der, static_cast<size_t>(der_len), digest, sizeof digest), 1);
  digest[0] ^= 1;  // another message does not verify
  EXPECT_NE(EVP_PKEY_verify(ctx, der, static_cast<size_t>(der_len), digest, sizeof digest), 1);
  EVP_PKEY_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  EVP_PKEY_free(pkey);
}

// ---- Transit keys: generated inside, persisted only wrapped ----------------------------------

TEST_F(TokenTest, WrappedKeysEncryptInsideAndNeverShowTheirValue) {
  const CK_OBJECT_HANDLE kek = Kek("transit");
  auto blob = token_->GenerateWrappedKey(kek, CKK_AES, 32);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(blob->size(), 40u);  // RFC 5649 of 32 bytes
  auto key = token_->UnwrapKey(kek, *blob, CKK_AES, 32);
  ASSERT_TRUE(key.ok()) << key.status();

  // The unwrapped object: sensitive, not extractable, encrypt/decrypt only, not a token object.
  auto attrs = token_->GetKeyAttributes(*key);
  ASSERT_TRUE(attrs.ok());
  EXPECT_TRUE(attrs->sensitive);
  EXPECT_FALSE(attrs->extractable);
  EXPECT_FALSE(attrs->token);
  EXPECT_TRUE(attrs->encrypt);
  EXPECT_FALSE(attrs->wrap);
  auto lease = token_->Acquire();
  ASSERT_TRUE(lease.ok());
  uint8_t buf[64];
  CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof buf};
  EXPECT_EQ(Str(RvName(lease->fn()->C_GetAttributeValue(lease->handle(), *key, &value, 1))),
            "CKR_ATTRIBUTE_SENSITIVE");

  const std::vector<uint8_t> iv(12, 7), aad = {'a', 'd'}, pt = Pattern(100, 3);
  auto ct = token_->AesGcmEncrypt(*key, iv, aad, pt);
  ASSERT_TRUE(ct.ok()) << ct.status();
  ASSERT_EQ(ct->size(), pt.size() + 16);
  auto back = token_->AesGcmDecrypt(*key, iv, aad, *ct);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, pt);
  auto bad = *ct;
  bad[5] ^= 1;
  EXPECT_EQ(Msg(token_->AesGcmDecrypt(*key, iv, aad, bad).status()),
            "cipher: message authentication failed");
  const std::vector<uint8_t> other_aad = {'a', 'e'};
  EXPECT_FALSE(token_->AesGcmDecrypt(*key, iv, other_aad, *ct).ok());
  EXPECT_FALSE(token_->AesGcmEncrypt(*key, iv, {}, pt).ok());  // empty AAD never reaches the token

  // The blob is not the key: another KEK cannot unwrap it, and an altered blob fails.
  const CK_OBJECT_HANDLE other = Kek("other");
  EXPECT_EQ(token_->UnwrapKey(other, *blob, CKK_AES, 32).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto altered = *blob;
  altered[9] ^= 1;
  EXPECT_FALSE(token_->UnwrapKey(kek, altered, CKK_AES, 32).ok());
  EXPECT_TRUE(token_->DestroyObject(*key).ok());
}

TEST_F(TokenTest, WrappedHmacKeysSignInside) {
  const CK_OBJECT_HANDLE kek = Kek("transit");
  auto blob = token_->GenerateWrappedKey(kek, CKK_GENERIC_SECRET, 64);
  ASSERT_TRUE(blob.ok()) << blob.status();
  auto key = token_->UnwrapKey(kek, *blob, CKK_GENERIC_SECRET, 64);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::vector<uint8_t> data = Pattern(50, 9);
  auto a = token_->Hmac(*key, CKM_SHA256_HMAC, data);
  auto b = token_->Hmac(*key, CKM_SHA256_HMAC, data);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(*a, *b);
  auto c = token_->Hmac(*key, CKM_SHA512_HMAC, data);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->size(), 64u);
  // Two generations give two different keys.
  auto blob2 = token_->GenerateWrappedKey(kek, CKK_GENERIC_SECRET, 64);
  auto key2 = token_->UnwrapKey(kek, *blob2, CKK_GENERIC_SECRET, 64);
  ASSERT_TRUE(key2.ok());
  EXPECT_NE(*token_->Hmac(*key2, CKM_SHA256_HMAC, data), *a);
  EXPECT_FALSE(token_->GenerateWrappedKey(kek, CKK_AES, 20).ok());
}

TEST_F(TokenTest, WrappedKeyPairsSignInsideForEveryType) {
  const CK_OBJECT_HANDLE kek = Kek("transit");
  using T = Token::PairType;
  // SoftHSM2 2.6.1 generates Ed25519 pairs but cannot wrap the private key: refused cleanly.
  auto ed = token_->GenerateWrappedPair(kek, T::kEd25519);
  EXPECT_EQ(ed.status().code(), absl::StatusCode::kFailedPrecondition) << ed.status();
  EXPECT_THAT(Msg(ed.status()), HasSubstr("CKR_KEY_NOT_WRAPPABLE"));
  for (T type : {T::kEcP256, T::kEcP384, T::kEcP521, T::kRsa2048}) {
    SCOPED_TRACE(static_cast<int>(type));
    auto pair = token_->GenerateWrappedPair(kek, type);
    ASSERT_TRUE(pair.ok()) << pair.status();
    EXPECT_FALSE(pair->public_spki.empty());
    auto key = token_->UnwrapPrivateKey(kek, pair->private_blob, type);
    ASSERT_TRUE(key.ok()) << key.status();
    auto attrs = token_->GetKeyAttributes(*key);
    ASSERT_TRUE(attrs.ok());
    EXPECT_TRUE(attrs->sensitive);
    EXPECT_FALSE(attrs->extractable);
    EXPECT_TRUE(attrs->sign);
    const std::vector<uint8_t> digest(32, 1);
    const CK_MECHANISM_TYPE mech = type == T::kEd25519   ? CKM_EDDSA
                                   : type == T::kRsa2048 ? CKM_RSA_PKCS
                                                         : CKM_ECDSA;
    auto sig = token_->SignWith(*key, mech, nullptr, digest);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_FALSE(sig->empty());
    const CK_OBJECT_HANDLE other = Kek("other-" + std::to_string(static_cast<int>(type)));
    EXPECT_FALSE(token_->UnwrapPrivateKey(other, pair->private_blob, type).ok());
  }
}

}  // namespace strongroom::hsm

namespace strongroom::hsm {
namespace {

// A transferable KEK moved the way a Raft join moves it (ECDH P-256 + AES key wrap), here
// within one token (two tokens cannot share a process: one module load per library); the copy
// unwraps what the original wrapped.
TEST_F(TokenTest, TransferableKekMovesThroughAnEcdhAgreedWrappingKey) {
  auto kek = token_->GenerateKek("cluster-kek", Token::KekMode::kTransferable);
  ASSERT_TRUE(kek.ok()) << kek.status();
  EXPECT_TRUE(token_->CheckKekPolicy(*kek, Token::KekMode::kTransferable).ok());
  EXPECT_FALSE(token_->CheckKekPolicy(*kek).ok());  // not a node-only KEK
  const std::string secret = "barrier keyring bytes";
  auto sealed =
      token_->WrapSecret(*kek, {reinterpret_cast<const uint8_t*>(secret.data()), secret.size()});
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  auto transport = token_->GenerateTransportKey();
  ASSERT_TRUE(transport.ok()) << transport.status();
  EXPECT_EQ(transport->public_point.size(), 65u);
  const CK_OBJECT_HANDLE keys[] = {*kek};
  auto wrapped = token_->WrapKeysForPeer(keys, transport->public_point);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  ASSERT_EQ(wrapped->blobs.size(), 1u);
  EXPECT_NE(wrapped->ephemeral_point, transport->public_point);

  auto copy = token_->UnwrapKekFromPeer(*transport, wrapped->ephemeral_point, wrapped->blobs[0],
                                        "cluster-kek-copy");
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_TRUE(token_->CheckKekPolicy(*copy, Token::KekMode::kTransferable).ok());
  auto attrs = token_->GetKeyAttributes(*copy);
  ASSERT_TRUE(attrs.ok());
  EXPECT_TRUE(attrs->token);
  EXPECT_TRUE(attrs->sensitive);
  auto opened = token_->UnwrapSecret(*copy, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(opened->data()), opened->size()), secret);

  // The label is taken now; a damaged blob or another agreement does not unwrap.
  EXPECT_EQ(token_
                ->UnwrapKekFromPeer(*transport, wrapped->ephemeral_point, wrapped->blobs[0],
                                    "cluster-kek-copy")
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  std::vector<uint8_t> bad = wrapped->blobs[0];
  bad[5] ^= 1;
  EXPECT_EQ(
      token_->UnwrapKekFromPeer(*transport, wrapped->ephemeral_point, bad, "x1").status().code(),
      absl::StatusCode::kInvalidArgument);
  auto other = token_->GenerateTransportKey();
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(
      token_->UnwrapKekFromPeer(*other, wrapped->ephemeral_point, wrapped->blobs[0], "x2").ok());
  // Not a point: refused before the token is asked.
  EXPECT_EQ(token_->WrapKeysForPeer(keys, "not a point").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Issue 17, item 4: the transfer key is bound to the joining node's id (a blob wrapped for n2
// does not unwrap as n3's), and the joining side unwraps only with a transport key its token
// generated: an imported (software) EC key is refused before any agreement.
TEST_F(TokenTest, AKekForAPeerIsBoundToTheNodeIdAndNeedsATransportKeyMadeInTheToken) {
  auto kek = token_->GenerateKek("cluster-kek", Token::KekMode::kTransferable);
  ASSERT_TRUE(kek.ok()) << kek.status();
  const CK_OBJECT_HANDLE keys[] = {*kek};
  auto transport = token_->GenerateTransportKey();
  ASSERT_TRUE(transport.ok()) << transport.status();
  auto wrapped = token_->WrapKeysForPeer(keys, transport->public_point, "n2");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(token_
                ->UnwrapKekFromPeer(*transport, wrapped->ephemeral_point, wrapped->blobs[0],
                                    "as-n3", "n3")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(token_
                  ->UnwrapKekFromPeer(*transport, wrapped->ephemeral_point, wrapped->blobs[0],
                                      "as-n2", "n2")
                  .ok());

  // A P-256 key made in software and imported into the token (CKA_LOCAL=false).
  EVP_PKEY* soft = EVP_EC_gen("P-256");
  ASSERT_NE(soft, nullptr);
  BIGNUM* priv = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(soft, "priv", &priv), 1);
  std::vector<uint8_t> scalar(32);
  ASSERT_EQ(BN_bn2binpad(priv, scalar.data(), 32), 32);
  BN_clear_free(priv);
  std::string point(65, '\0');
  size_t point_len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(soft, "pub", reinterpret_cast<uint8_t*>(point.data()),
                                            point.size(), &point_len),
            1);
  EVP_PKEY_free(soft);
  ASSERT_EQ(point_len, 65u);
  auto lease = token_->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.status();
  static const uint8_t kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_KEY_TYPE type = CKK_EC;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_KEY_TYPE, &type, sizeof type},
      {CKA_TOKEN, &no, sizeof no},
      {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_SENSITIVE, &yes, sizeof yes},
      {CKA_EXTRACTABLE, &no, sizeof no},
      {CKA_DERIVE, &yes, sizeof yes},
      {CKA_EC_PARAMS, const_cast<uint8_t*>(kP256), sizeof kP256},
      {CKA_VALUE, scalar.data(), static_cast<CK_ULONG>(scalar.size())},
  };
  Token::TransportKey imported;
  ASSERT_EQ(
      lease->fn()->C_CreateObject(lease->handle(), tmpl, std::size(tmpl), &imported.private_key),
      static_cast<CK_RV>(CKR_OK));
  imported.public_point = point;
  auto for_soft = token_->WrapKeysForPeer(keys, imported.public_point, "n4");
  ASSERT_TRUE(for_soft.ok()) << for_soft.status();
  auto refused = token_->UnwrapKekFromPeer(imported, for_soft->ephemeral_point, for_soft->blobs[0],
                                           "soft", "n4");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(Msg(refused.status()), HasSubstr("CKA_LOCAL=false"));
  EXPECT_FALSE(token_->FindSecretKey("soft").ok());
}

TEST_F(TokenTest, ANodeOnlyKekCannotBeWrappedForAPeer) {
  const CK_OBJECT_HANDLE kek = Kek();
  auto transport = token_->GenerateTransportKey();
  ASSERT_TRUE(transport.ok()) << transport.status();
  const CK_OBJECT_HANDLE keys[] = {kek};
  auto wrapped = token_->WrapKeysForPeer(keys, transport->public_point);
  // SoftHSM2 answers CKR_KEY_UNEXTRACTABLE.
  EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kPermissionDenied) << wrapped.status();
  EXPECT_THAT(Msg(wrapped.status()), HasSubstr("CKR_KEY_UNEXTRACTABLE"));
}

}  // namespace
}  // namespace strongroom::hsm
