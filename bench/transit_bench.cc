// transit_bench: Transit encrypt and decrypt of 64 B and 1 KiB through the whole stack (HTTP
// worker -> broker -> Transit engine -> PKCS#11 token), next to the raw limit measured in the
// same run on the same token: AES-256-GCM C_EncryptInit+C_Encrypt / C_DecryptInit+C_Decrypt
// called in-process on sessions of an hsm::Token with the same number of threads, and the same
// through hsm::Token::AesGcmEncrypt/AesGcmDecrypt (what the broker calls). Prints ops/s, p50/p99
// and the ratios, and the cost of each phase: CPU microseconds per operation of the appliance's
// processes (broker, spawner, workers: every descendant of this process) for the full stack, of
// this process for the in-process phases. Cost does not depend on what else runs on the machine;
// throughput does. Not a test: run bench/run.sh.
//
// The token is a throwaway SoftHSM2 token (label "bench") in the run's temp dir; the daemon is
// started on it with a config file (not -dev) so that this process can open the same token.
//
// Usage: transit_bench [--seconds=N] [--clients=N] [--bin=DIR] [--profile=encrypt|decrypt]
//   --profile: only the 1 KiB full-stack phase of that operation, for a profiler: prints the
//   daemon's process ids, waits 2 s (attach `perf record -p` then), runs the phase and its cost.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "bench/bench_util.h"
#include "hsm/token.h"

extern char** environ;

namespace {

using strongroom::bench::Conn;
using strongroom::bench::IsDescendant;
using strongroom::bench::JsonString;
using strongroom::bench::kPin;
using strongroom::bench::kSoftHsmLib;
using strongroom::bench::Print;
using strongroom::bench::ProcStat;
using strongroom::bench::ReadAllProcStats;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;
using strongroom::bench::RunQuiet;
using strongroom::bench::SelfCpuSeconds;

constexpr const char* kTokenLabel = "bench";

// A SoftHSM2 config whose token directory is inside `dir`, made current for this process and
// the daemon it spawns (SOFTHSM2_CONF), and an initialised token "bench" in it.
bool MakeToken(const std::string& dir) {
  const std::string tokens = dir + "/tokens";
  const std::string conf = dir + "/softhsm2.conf";
  if (mkdir(tokens.c_str(), 0700) != 0) return false;
  {
    std::ofstream c(conf);
    c << "directories.tokendir = " << tokens << "/\n"
      << "objectstore.backend = file\n"
      << "log.level = ERROR\n"
      << "slots.removable = false\n"
      << "slots.mechanisms = ALL\n"
      << "library.reset_on_fork = false\n";
    if (!c) return false;
  }
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);  // before any thread and before the daemon starts
  return RunQuiet({"softhsm2-util", "--init-token", "--free", "--label", kTokenLabel, "--pin", kPin,
                   "--so-pin", "5678"});
}

std::string Plaintext(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Every live descendant of this process (the daemon, its spawner and its workers).
std::map<pid_t, ProcStat> Descendants() {
  const std::map<pid_t, ProcStat> all = ReadAllProcStats();
  std::map<pid_t, ProcStat> out;
  for (const auto& [pid, st] : all) {
    if (IsDescendant(all, pid, getpid())) out.emplace(pid, st);
  }
  return out;
}

// CPU seconds used so far, by part. The appliance's parts are "broker" (the daemon, a child of
// this process), "spawner" (the broker's strongroomd child) and "workers"; "client" is this
// process (the load generator, or the whole in-process raw phase).
using CpuSplit = std::map<std::string, double>;

CpuSplit ApplianceCpu() {
  CpuSplit out;
  for (const auto& [pid, st] : Descendants()) {
    if (st.ppid == getpid()) {
      out["broker"] += st.cpu_s;
    } else if (st.comm.rfind("strongroom-work", 0) == 0) {
      out["workers"] += st.cpu_s;
    } else {
      out["spawner"] += st.cpu_s;
    }
  }
  out["client"] = SelfCpuSeconds();
  return out;
}

CpuSplit ClientCpu() { return {{"client", SelfCpuSeconds()}}; }

// A phase's throughput and its cost: CPU microseconds per operation, by part.
struct Costed {
  Result result;
  std::map<std::string, double> us_per_op;
};

Costed Measure(double seconds, CpuSplit (*cpu)(), const std::function<Result()>& run) {
  const CpuSplit before = cpu();
  Costed c;
  c.result = run();
  const double ops = c.result.ops_per_s * seconds;
  if (ops <= 0) return c;
  for (const auto& [part, after] : cpu()) {
    auto it = before.find(part);
    c.us_per_op[part] = (after - (it == before.end() ? 0 : it->second)) * 1e6 / ops;
  }
  return c;
}

// "name   T us CPU per op (broker B + workers W + spawner S; client C)" for the full stack,
// "name   C us CPU per op (in-process)" for the raw phases.
void PrintCost(const char* name, const Costed& c) {
  auto part = [&](const char* p) {
    auto it = c.us_per_op.find(p);
    return it == c.us_per_op.end() ? 0.0 : it->second;
  };
  if (c.us_per_op.size() == 1) {
    std::printf("%-38s %8.1f us CPU per op (in-process)\n", name, part("client"));
    return;
  }
  const double appliance = part("broker") + part("workers") + part("spawner");
  std::printf(
      "%-38s %8.1f us CPU per op (broker %.1f + workers %.1f + spawner %.1f; load generator "
      "%.1f)\n",
      name, appliance, part("broker"), part("workers"), part("spawner"), part("client"));
}

// One AES-GCM operation's results for 64 B and 1 KiB, encrypt and decrypt.
struct GcmResults {
  Costed enc64, enc1k, dec64, dec1k;
};

struct RawResults {
  GcmResults pkcs11;  // C_EncryptInit+C_Encrypt / C_DecryptInit+C_Decrypt on a held session
  GcmResults token;   // hsm::Token::AesGcmEncrypt / AesGcmDecrypt (what the broker calls)
  // C_EncryptInit+C_Encrypt / C_DecryptInit+C_Decrypt of 1 KiB with a key that is not
  // CKA_PRIVATE: SoftHSM2 keeps a private object's value encrypted under its token key and
  // decrypts it in every *Init (a global lock and a random draw included). Not what Transit
  // uses; it shows that part of the token's cost.
  Costed public_enc1k, public_dec1k;
};

CK_GCM_PARAMS GcmParams(const std::vector<uint8_t>& iv, const std::string& aad) {
  CK_GCM_PARAMS p{};
  p.iv_ptr = const_cast<uint8_t*>(iv.data());
  p.iv_len = iv.size();
  p.iv_bits = iv.size() * 8;
  p.aad_ptr = reinterpret_cast<uint8_t*>(const_cast<char*>(aad.data()));
  p.aad_len = aad.size();
  p.tag_bits = 128;
  return p;
}

// The raw limit: AES-256-GCM in the token, called in-process, measured twice: straight through
// the PKCS#11 function list on one session per thread (the reference for the ratios), and
// through hsm::Token's AesGcmEncrypt/AesGcmDecrypt (session pool and checks). The key is made as
// Transit makes its keys (generated in the token, wrapped by a KEK, unwrapped into a sensitive
// session object), under a KEK of its own
// ("bench-raw-kek", a token object). The AAD has the shape and length of Transit's bound AAD
// ("strongroom-transit" 0 name 0 version 0), so the token does the same work per call.
// Then 1 KiB once more with a generated session key that is not CKA_PRIVATE (RawResults).
bool RawPhase(int clients, double seconds, RawResults* out) {
  using strongroom::hsm::Token;
  auto token = Token::Open(
      {.lib = kSoftHsmLib, .token_label = kTokenLabel, .slot = std::nullopt, .pin_spec = kPin});
  auto failed = [](const absl::Status& s) {
    std::fprintf(stderr, "raw PKCS#11 phase: %s\n", s.ToString().c_str());
    return false;
  };
  if (!token.ok()) return failed(token.status());
  auto kek = (*token)->GenerateKek("bench-raw-kek");
  if (!kek.ok()) return failed(kek.status());
  auto blob = (*token)->GenerateWrappedKey(*kek, CKK_AES, 32);
  if (!blob.ok()) return failed(blob.status());
  auto key = (*token)->UnwrapKey(*kek, *blob, CKK_AES, 32);
  if (!key.ok()) return failed(key.status());
  const std::string aad = std::string("strongroom-transit") + '\0' + "bench" + '\0' + "1" + '\0';
  Token* t = token->get();
  const CK_OBJECT_HANDLE k = *key;
  const std::string p64 = Plaintext(64), p1k = Plaintext(1024);

  // Encrypt: a distinct IV per call (thread number and a counter).
  auto next_iv = [](std::vector<uint8_t>& iv, int thread, uint64_t& n) {
    iv[0] = static_cast<uint8_t>(thread);
    ++n;
    for (int b = 0; b < 8; ++b) iv[4 + b] = static_cast<uint8_t>(n >> (8 * b));
  };
  auto pkcs11_encrypt = [&](const std::string& pt, CK_OBJECT_HANDLE key_handle) {
    return Measure(seconds, ClientCpu, [&] {
      return RunLoad(clients, seconds, [&](int thread) -> std::function<bool()> {
        auto lease = std::make_shared<absl::StatusOr<Token::Lease>>(t->Acquire());
        if (!lease->ok()) return [] { return false; };
        return [&, lease, thread, iv = std::vector<uint8_t>(12, 0), n = uint64_t{0},
                buf = std::vector<uint8_t>(pt.size() + 16)]() mutable {
          next_iv(iv, thread, n);
          CK_GCM_PARAMS params = GcmParams(iv, aad);
          CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof params};
          Token::Lease& l = **lease;
          if (l.fn()->C_EncryptInit(l.handle(), &mech, key_handle) != CKR_OK) return false;
          CK_ULONG len = buf.size();
          return l.fn()->C_Encrypt(l.handle(),
                                   reinterpret_cast<uint8_t*>(const_cast<char*>(pt.data())),
                                   pt.size(), buf.data(), &len) == CKR_OK;
        };
      });
    });
  };
  auto token_encrypt = [&](const std::string& pt) {
    return Measure(seconds, ClientCpu, [&] {
      return RunLoad(clients, seconds, [&](int thread) {
        return [&, thread, iv = std::vector<uint8_t>(12, 0), n = uint64_t{0}]() mutable {
          next_iv(iv, thread, n);
          return t->AesGcmEncrypt(k, iv, Bytes(aad), Bytes(pt)).ok();
        };
      });
    });
  };
  // Decrypt: one ciphertext per size, made (and checked) before the timed phases.
  const std::vector<uint8_t> iv(12, 7);
  auto ct64 = t->AesGcmEncrypt(k, iv, Bytes(aad), Bytes(p64));
  auto ct1k = t->AesGcmEncrypt(k, iv, Bytes(aad), Bytes(p1k));
  if (!ct64.ok()) return failed(ct64.status());
  if (!ct1k.ok()) return failed(ct1k.status());
  auto back = t->AesGcmDecrypt(k, iv, Bytes(aad), *ct1k);
  if (!back.ok()) return failed(back.status());
  if (back->size() != p1k.size()) return failed(absl::InternalError("decrypt round trip"));
  auto pkcs11_decrypt = [&](std::vector<uint8_t>& ct, CK_OBJECT_HANDLE key_handle) {
    return Measure(seconds, ClientCpu, [&] {
      return RunLoad(clients, seconds, [&](int) -> std::function<bool()> {
        auto lease = std::make_shared<absl::StatusOr<Token::Lease>>(t->Acquire());
        if (!lease->ok()) return [] { return false; };
        return [&, lease, buf = std::vector<uint8_t>(ct.size())]() mutable {
          CK_GCM_PARAMS params = GcmParams(iv, aad);
          CK_MECHANISM mech = {CKM_AES_GCM, &params, sizeof params};
          Token::Lease& l = **lease;
          if (l.fn()->C_DecryptInit(l.handle(), &mech, key_handle) != CKR_OK) return false;
          CK_ULONG len = buf.size();
          return l.fn()->C_Decrypt(l.handle(), ct.data(), ct.size(), buf.data(), &len) == CKR_OK;
        };
      });
    });
  };
  auto token_decrypt = [&](const std::vector<uint8_t>& ct) {
    return Measure(seconds, ClientCpu, [&] {
      return RunLoad(clients, seconds, [&](int) {
        return [&] { return t->AesGcmDecrypt(k, iv, Bytes(aad), ct).ok(); };
      });
    });
  };
  out->pkcs11 = {pkcs11_encrypt(p64, k), pkcs11_encrypt(p1k, k), pkcs11_decrypt(*ct64, k),
                 pkcs11_decrypt(*ct1k, k)};
  out->token = {token_encrypt(p64), token_encrypt(p1k), token_decrypt(*ct64), token_decrypt(*ct1k)};
  (void)(*token)->DestroyObject(k);

  // The same key attributes but CKA_PRIVATE=false, generated in the token (a session object).
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  {
    auto lease = t->Acquire();
    if (!lease.ok()) return failed(lease.status());
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &no, 1},
        {CKA_PRIVATE, &no, 1},
        {CKA_SENSITIVE, &yes, 1},
        {CKA_EXTRACTABLE, &no, 1},
        {CKA_ENCRYPT, &yes, 1},
        {CKA_DECRYPT, &yes, 1},
    };
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, nullptr, 0};
    if (lease->fn()->C_GenerateKey(lease->handle(), &gen, tmpl, std::size(tmpl), &pub) != CKR_OK) {
      return failed(absl::InternalError("C_GenerateKey (CKA_PRIVATE=false)"));
    }
  }
  auto pub_ct1k = t->AesGcmEncrypt(pub, iv, Bytes(aad), Bytes(p1k));
  if (!pub_ct1k.ok()) return failed(pub_ct1k.status());
  out->public_enc1k = pkcs11_encrypt(p1k, pub);
  out->public_dec1k = pkcs11_decrypt(*pub_ct1k, pub);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  const double seconds = opt.seconds;
  const int clients = opt.clients;
  std::string profile;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--profile=", 10) == 0) profile = argv[i] + 10;
  }
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
  std::printf("transit_bench: %.0f s per phase, %d clients, %u cores\n\n", seconds, clients,
              std::thread::hardware_concurrency());
  if (!MakeToken(dir)) {
    std::fprintf(stderr, "cannot make a SoftHSM2 token in %s (softhsm2-util installed?)\n",
                 dir.c_str());
    return 1;
  }

  // --- the appliance on the token, initialised, Transit at transit/ with key "bench".
  const std::string config = dir + "/strongroom.hcl";
  {
    std::ofstream c(config);
    c << "listener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}\n"
      << "storage \"rocksdb\" {\n  path = \"" << dir << "/data\"\n}\n"
      << "seal \"pkcs11\" {\n  lib = \"" << kSoftHsmLib << "\"\n  token_label = \"" << kTokenLabel
      << "\"\n  pin = \"" << kPin << "\"\n}\n";
  }
  strongroom::bench::Daemon daemon;
  if (!daemon.Start({opt.bin + "/strongroomd", "-config=" + config}, dir + "/daemon.log")) {
    std::fprintf(stderr, "strongroomd did not start; see %s/daemon.log\n", dir.c_str());
    return 1;
  }
  const int port = daemon.port();
  std::string root;
  std::string ct64, ct1k;
  const std::string p64 = Plaintext(64), p1k = Plaintext(1024);
  const std::string enc64 = "{\"plaintext\":\"" + absl::Base64Escape(p64) + "\"}";
  const std::string enc1k = "{\"plaintext\":\"" + absl::Base64Escape(p1k) + "\"}";
  {
    Conn c(port);
    std::string resp;
    if (c.Do("PUT", "/v1/sys/init", "", R"({"recovery_shares":1,"recovery_threshold":1})", &resp) !=
            200 ||
        (root = JsonString(resp, "root_token")).empty()) {
      std::fprintf(stderr, "sys/init failed: %s\n", resp.c_str());
      return 1;
    }
    if (c.Do("POST", "/v1/sys/mounts/transit", root, R"({"type":"transit"})", &resp) / 100 != 2 ||
        c.Do("POST", "/v1/transit/keys/bench", root, "", &resp) / 100 != 2) {
      std::fprintf(stderr, "mounting transit or creating the key failed: %s\n", resp.c_str());
      return 1;
    }
    // The ciphertexts the decrypt phases use, checked once to decrypt to the plaintext.
    for (auto [body, pt, ct] : {std::tuple{&enc64, &p64, &ct64}, std::tuple{&enc1k, &p1k, &ct1k}}) {
      if (c.Do("POST", "/v1/transit/encrypt/bench", root, *body, &resp) != 200 ||
          (*ct = JsonString(resp, "ciphertext")).empty() ||
          c.Do("POST", "/v1/transit/decrypt/bench", root, "{\"ciphertext\":\"" + *ct + "\"}",
               &resp) != 200 ||
          JsonString(resp, "plaintext") != absl::Base64Escape(*pt)) {
        std::fprintf(stderr, "transit round trip failed: %s\n", resp.c_str());
        return 1;
      }
    }
  }
  auto http = [&](const std::string& path, const std::string& body) {
    return Measure(seconds, ApplianceCpu, [&] {
      return RunLoad(clients, seconds, [&](int) {
        auto c = std::make_shared<Conn>(port);
        return [&, c] { return c->Do("POST", path, root, body) == 200; };
      });
    });
  };
  const std::string dec64 = "{\"ciphertext\":\"" + ct64 + "\"}";
  const std::string dec1k = "{\"ciphertext\":\"" + ct1k + "\"}";
  if (!profile.empty()) {
    const bool enc = profile == "encrypt";
    if (!enc && profile != "decrypt") {
      std::fprintf(stderr, "--profile= takes encrypt or decrypt\n");
      return 2;
    }
    for (const auto& [pid, st] : Descendants()) std::printf("pid %d %s\n", pid, st.comm.c_str());
    std::printf("phase starts in 2 s and lasts %.0f s\n", seconds);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const Costed c =
        enc ? http("/v1/transit/encrypt/bench", enc1k) : http("/v1/transit/decrypt/bench", dec1k);
    Print(enc ? "Transit encrypt 1 KiB" : "Transit decrypt 1 KiB", c.result, nullptr);
    PrintCost(enc ? "Transit encrypt 1 KiB" : "Transit decrypt 1 KiB", c);
    daemon.Stop();
    return strongroom::bench::RemoveTree(dir) ? 0 : 1;
  }
  Costed http_enc64 = http("/v1/transit/encrypt/bench", enc64);
  Costed http_enc1k = http("/v1/transit/encrypt/bench", enc1k);
  Costed http_dec64 = http("/v1/transit/decrypt/bench", dec64);
  Costed http_dec1k = http("/v1/transit/decrypt/bench", dec1k);
  daemon.Stop();

  // --- the raw limit on the same token, after the daemon has stopped. Both processes can use
  // the token at once (tried: this phase run while the daemon held the token open, creating
  // "bench-raw-kek"; the daemon then created its audit key pair, a new Transit key, and kept
  // encrypting and decrypting), but the phases should not share the CPU with an idle daemon.
  RawResults raw;
  if (!RawPhase(clients, seconds, &raw)) return 1;

  std::printf("raw limits (in-process PKCS#11 AES-256-GCM on the same token, same run)\n");
  Print("C_Encrypt 64 B", raw.pkcs11.enc64.result, nullptr);
  Print("C_Encrypt 1 KiB", raw.pkcs11.enc1k.result, nullptr);
  Print("C_Decrypt 64 B", raw.pkcs11.dec64.result, nullptr);
  Print("C_Decrypt 1 KiB", raw.pkcs11.dec1k.result, nullptr);
  Print("C_Encrypt 1 KiB, key not CKA_PRIVATE", raw.public_enc1k.result, nullptr);
  Print("C_Decrypt 1 KiB, key not CKA_PRIVATE", raw.public_dec1k.result, nullptr);
  std::printf("\nthrough hsm::Token (session pool, checks)\n");
  Print("AesGcmEncrypt 64 B  (vs C_Encrypt)", raw.token.enc64.result, &raw.pkcs11.enc64.result,
        "raw");
  Print("AesGcmEncrypt 1 KiB (vs C_Encrypt)", raw.token.enc1k.result, &raw.pkcs11.enc1k.result,
        "raw");
  Print("AesGcmDecrypt 64 B  (vs C_Decrypt)", raw.token.dec64.result, &raw.pkcs11.dec64.result,
        "raw");
  Print("AesGcmDecrypt 1 KiB (vs C_Decrypt)", raw.token.dec1k.result, &raw.pkcs11.dec1k.result,
        "raw");
  std::printf("\nfull stack (HTTP worker -> broker -> Transit -> PKCS#11 token)\n");
  Print("Transit encrypt 64 B  (vs C_Encrypt)", http_enc64.result, &raw.pkcs11.enc64.result, "raw");
  Print("Transit encrypt 1 KiB (vs C_Encrypt)", http_enc1k.result, &raw.pkcs11.enc1k.result, "raw");
  Print("Transit decrypt 64 B  (vs C_Decrypt)", http_dec64.result, &raw.pkcs11.dec64.result, "raw");
  Print("Transit decrypt 1 KiB (vs C_Decrypt)", http_dec1k.result, &raw.pkcs11.dec1k.result, "raw");
  std::printf("\ncost (CPU time per operation; independent of other load on the machine)\n");
  PrintCost("C_Encrypt 1 KiB", raw.pkcs11.enc1k);
  PrintCost("C_Decrypt 1 KiB", raw.pkcs11.dec1k);
  PrintCost("C_Encrypt 1 KiB, key not CKA_PRIVATE", raw.public_enc1k);
  PrintCost("C_Decrypt 1 KiB, key not CKA_PRIVATE", raw.public_dec1k);
  PrintCost("AesGcmEncrypt 1 KiB", raw.token.enc1k);
  PrintCost("AesGcmDecrypt 1 KiB", raw.token.dec1k);
  PrintCost("Transit encrypt 64 B", http_enc64);
  PrintCost("Transit encrypt 1 KiB", http_enc1k);
  PrintCost("Transit decrypt 64 B", http_dec64);
  PrintCost("Transit decrypt 1 KiB", http_dec1k);
  std::printf("\n");
  // For bench/run.sh's targets table.
  using strongroom::bench::Report;
  using strongroom::bench::ReportRatio;
  Report("transit.raw_encrypt_1k_ops", raw.pkcs11.enc1k.result.ops_per_s);
  Report("transit.raw_decrypt_1k_ops", raw.pkcs11.dec1k.result.ops_per_s);
  Report("transit.encrypt_1k", http_enc1k.result);
  Report("transit.decrypt_1k", http_dec1k.result);
  ReportRatio("transit.encrypt_ratio", http_enc1k.result, raw.pkcs11.enc1k.result);
  ReportRatio("transit.decrypt_ratio", http_dec1k.result, raw.pkcs11.dec1k.result);
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
