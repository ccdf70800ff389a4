// audit_verify_bench: how fast strongroom-audit verifies a large log (issue 23, item 9), next to
// the raw limits measured in the same run on the same bytes: a sequential read of the files
// (large blocks, split into lines: the verifier's reader) and OpenSSL SHA-256 over every line
// (one pass; the format needs two per line, the chain hash and the Merkle leaf hash).
//
// It first writes (or reuses) a log of --lines lines made with the writer's own helpers
// (audit/chain.h) and a software ECDSA P-256 key: Vault-shaped request and response records of
// the reference workload (KV reads and writes, Transit, Kubernetes and AppRole logins, token
// lookups, denials), a MAC line ending every durable batch of 1-16 records, a checkpoint every
// 1000 entries, and a rotation every 1,000,000 lines that ends the file with a checkpoint as the
// daemon does at SIGHUP. Then it verifies the files with 1 thread and with --threads (default:
// every core), and prints lines/s, MB/s and the ratios. Not a test: run bench/run.sh.
//
// Usage: audit_verify_bench [--lines=N] [--lines-per-file=N] [--dir=DIR] [--threads=N] [--gzip]
//   --gzip  compress every rotated file but the newest (as logrotate does) and measure that too,
//           with zlib decompression as one more raw limit.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/encoding.h"
#include "audit/keys.h"
#include "audit/log_reader.h"
#include "audit/verifier.h"

namespace {

namespace fs = std::filesystem;
using namespace strongroom::audit;  // NOLINT: benchmark
using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t lines = 10'000'000;
  std::string dir;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  bool gzip = false;
  uint64_t lines_per_file = 1'000'000;
};

constexpr uint64_t kCheckpointEvery = 1000;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "audit_verify_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.message());
  return std::move(r).value();
}

// xorshift64*: reproducible records without a dependency.
class Rng {
 public:
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ULL;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t s_ = 0x9e3779b97f4a7c15ULL;
};

std::string Hmac(Rng& rng) {
  // "hmac-sha256:" + 64 hex digits, as Vault writes a hashed value.
  char h[32];
  for (char& c : h) c = static_cast<char>(rng.Next());
  return "hmac-sha256:" + HexEncode(std::string_view(h, sizeof h));
}

std::string Time(uint64_t n) {
  const uint64_t s = 1714521600 + n / 400;  // 400 lines a second
  char buf[64];
  std::snprintf(buf, sizeof buf, "2024-05-%02uT%02u:%02u:%02u.%09uZ",
                static_cast<unsigned>(1 + s / 86400 % 28), static_cast<unsigned>(s / 3600 % 24),
                static_cast<unsigned>(s / 60 % 60), static_cast<unsigned>(s % 60),
                static_cast<unsigned>(n * 7919 % 1000000000));
  return buf;
}

// One Vault file-audit record of the reference workload (vault-api.md 8.1), as JSON text.
std::string Record(Rng& rng, uint64_t n, bool response) {
  struct Kind {
    const char* op;
    const char* mount;
    const char* type;
    const char* path;
  };
  static const Kind kKinds[] = {
      {"read", "secret/", "kv", "secret/data/lobstack/agent/"},
      {"read", "secret/", "kv", "secret/data/lobstack/agent/"},
      {"read", "secret/", "kv", "secret/data/lobstack/api-keys"},
      {"update", "secret/", "kv", "secret/data/lobstack/agent/"},
      {"update", "transit/", "transit", "transit/encrypt/tenant-"},
      {"update", "transit/", "transit", "transit/decrypt/tenant-"},
      {"update", "auth/kubernetes/", "kubernetes", "auth/kubernetes/login"},
      {"update", "auth/approle/", "approle", "auth/approle/login"},
      {"update", "auth/token/", "token", "auth/token/lookup-self"},
  };
  const Kind& k = kKinds[rng.Below(std::size(kKinds))];
  const uint64_t agent = rng.Below(5000);
  std::string path = k.path;
  if (path.back() == '/' || path.back() == '-') path += std::to_string(agent);
  const bool denied = rng.Below(50) == 0;
  const std::string token = Hmac(rng);
  const std::string accessor = Hmac(rng);
  char id[40];
  std::snprintf(id, sizeof id, "%08x-%04x-4%03x-8%03x-%012llx", static_cast<unsigned>(n),
                static_cast<unsigned>(rng.Below(65536)), static_cast<unsigned>(rng.Below(4096)),
                static_cast<unsigned>(rng.Below(4096)),
                static_cast<unsigned long long>(rng.Below(1ULL << 48)));
  std::string r =
      R"({"auth":{"accessor":")" + accessor + R"(","client_token":")" + token +
      R"(","display_name":"kubernetes-lobstack-agent-)" + std::to_string(agent) +
      R"(","metadata":{"role":"agent","service_account_name":"agent-)" + std::to_string(agent) +
      R"(","service_account_namespace":"lobstack"},"policies":["default","agent"],)" +
      R"("policy_results":{"allowed":)" + (denied ? "false" : "true") +
      R"(,"granting_policies":[{"name":"agent","namespace_id":"root","type":"acl"}]},)" +
      R"("token_policies":["default","agent"],"token_issue_time":")" + Time(n > 100 ? n - 100 : 0) +
      R"(","token_ttl":3600,"token_type":"service"},)";
  if (denied) r += R"("error":"1 error occurred:\n\t* permission denied\n\n",)";
  r += R"("request":{"client_id":")" + std::to_string(agent) + R"(","data":{)";
  if (k.type == std::string("transit")) {
    r += R"("plaintext":")" + Hmac(rng) + R"(","context":")" + Hmac(rng) + "\"";
  } else if (k.type == std::string("kubernetes")) {
    r += R"("jwt":")" + Hmac(rng) + R"(","role":"agent")";
  } else if (k.op == std::string("update")) {
    r += R"("data":{"api_key":")" + Hmac(rng) + R"(","model":")" + Hmac(rng) + "\"}";
  }
  r += R"(},"id":")" + std::string(id) + R"(","mount_accessor":")" + k.type + "_" +
       std::to_string(1000 + std::strlen(k.mount)) + R"(","mount_class":"secret","mount_point":")" +
       k.mount + R"(","mount_running_version":"v0.1.0+builtin","mount_type":")" + k.type +
       R"(","namespace":{"id":"root"},"operation":")" + k.op + R"(","path":")" + path +
       R"(","remote_address":"10.42.)" + std::to_string(agent % 256) + "." +
       std::to_string(agent / 256) + R"(","remote_port":)" +
       std::to_string(30000 + rng.Below(30000)) + "}";
  if (response && !denied) {
    r += R"(,"response":{"data":{)";
    if (k.type == std::string("kv")) {
      r += R"("data":{"api_key":")" + Hmac(rng) + R"(","model":")" + Hmac(rng) +
           R"("},"metadata":{"created_time":")" + Time(n > 5000 ? n - 5000 : 0) +
           R"(","custom_metadata":null,"deletion_time":"","destroyed":false,"version":)" +
           std::to_string(1 + rng.Below(9)) + "}";
    } else if (k.type == std::string("transit")) {
      r += R"("ciphertext":")" + Hmac(rng) + R"(","key_version":)" +
           std::to_string(1 + rng.Below(4));
    } else {
      r += R"("accessor":")" + Hmac(rng) + R"(","client_token":")" + Hmac(rng) + "\"";
    }
    r += R"(},"mount_accessor":")" + std::string(k.type) + R"(_1009","mount_point":")" + k.mount +
         R"(","mount_running_plugin_version":"v0.1.0+builtin","mount_type":")" + k.type + "\"}";
  }
  r += R"(,"time":")" + Time(n) + R"(","type":")" + (response ? "response" : "request") + "\"}";
  return r;
}

class Writer {
 public:
  Writer(const Options& o, const PrivateKey& key) : o_(o), key_(key) {
    pub_.push_back(Must(key.Public(), "public key"));
  }

  std::vector<std::string> Write() {
    std::vector<std::string> files;
    uint64_t entries_since_checkpoint = 0;
    std::ofstream out;
    std::string buf;
    auto append = [&](const ChainedLine& line) {
      buf += line.line;
      state_ = line.next;
      if (buf.size() > (8 << 20)) {
        out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
        buf.clear();
      }
    };
    auto checkpoint = [&] {
      const std::string body =
          Must(CheckpointBody("file", "node1", state_, Time(state_.last_seq + 1)), "body");
      const std::string note = Must(SignCheckpoint(body, key_), "sign");
      append(Must(MakeCheckpointLine(note, state_, pub_), "checkpoint line"));
      entries_since_checkpoint = 0;
    };
    uint64_t batch_left = 0;
    while (state_.last_seq < o_.lines) {
      if (!out.is_open()) {
        char name[64];
        std::snprintf(name, sizeof name, "audit.log-%03zu", files.size() + 1);
        files.push_back((fs::path(o_.dir) / name).string());
        out.open(files.back(), std::ios::binary | std::ios::trunc);
        if (!out) Die("cannot write " + files.back());
      }
      const uint64_t seq = state_.last_seq + 1;
      const bool end_of_file = seq % o_.lines_per_file == 0 || seq == o_.lines;
      if (end_of_file || entries_since_checkpoint == kCheckpointEvery) {
        checkpoint();
      } else if (batch_left == 0 && entries_since_checkpoint > 0) {
        append(Must(MakeMacLine(Sha256("mac " + std::to_string(seq)), Time(seq), state_), "mac"));
        batch_left = 1 + rng_.Below(16);
      } else {
        const std::string rec = Record(rng_, seq, records_++ % 2 == 1);
        append(Must(MakeChainedLine(rec, state_), "record"));
        ++entries_since_checkpoint;
        if (batch_left > 0) --batch_left;
      }
      if (end_of_file) {
        out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
        buf.clear();
        out.close();
        std::fprintf(stderr, "\r  written %llu lines", static_cast<unsigned long long>(seq));
      }
    }
    std::fprintf(stderr, "\n");
    return files;
  }

 private:
  const Options& o_;
  const PrivateKey& key_;
  std::vector<PublicKey> pub_;
  ChainState state_;
  Rng rng_;
  uint64_t records_ = 0;
};

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time of the whole process (all threads): lines per CPU second is the cost per core, which
// a busy machine (other work on the cores) does not distort the way it does wall time.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Pass {
  double seconds = 0;
  double cpu_seconds = 0;
  uint64_t lines = 0;
  uint64_t bytes = 0;
  double lines_per_s() const { return static_cast<double>(lines) / seconds; }
  double mb_per_s() const { return static_cast<double>(bytes) / 1e6 / seconds; }
  double lines_per_cpu_s() const { return static_cast<double>(lines) / cpu_seconds; }
  double mb_per_cpu_s() const { return static_cast<double>(bytes) / 1e6 / cpu_seconds; }
};

// Reads every file the way the verifier does (large blocks, lines split), and optionally hashes
// each line with SHA-256 (`hashes` passes: 0, 1 or 2).
Pass ReadAll(const std::vector<std::string>& files, int hashes) {
  Pass p;
  const auto t0 = Clock::now();
  const double c0 = CpuSeconds();
  Sha256Hasher h;
  uint8_t sink = 0;
  for (const std::string& f : files) {
    LogFile file = Must(LogFile::Open(f), "open");
    LineReader reader(&file);
    std::string_view line;
    bool terminated = false;
    while (reader.Read(&line, &terminated) == LineReader::Next::kLine) {
      ++p.lines;
      p.bytes += line.size() + 1;
      for (int i = 0; i < hashes; ++i) {
        h.Update(line);
        sink ^= h.Final()[0];
      }
    }
  }
  p.seconds = Seconds(t0);
  p.cpu_seconds = CpuSeconds() - c0;
  if (sink == 0x5a) std::fprintf(stderr, " ");  // keep the hashes
  return p;
}

Pass Verify(const std::vector<std::string>& files, const std::vector<PublicKey>& keys,
            unsigned threads, bool full_parser) {
  VerifyOptions o;
  o.keys = keys;
  o.threads = threads;
  o.full_parser_only = full_parser;
  const auto t0 = Clock::now();
  const double c0 = CpuSeconds();
  Report r = VerifyFiles(files, o);
  Pass p;
  p.seconds = Seconds(t0);
  p.cpu_seconds = CpuSeconds() - c0;
  if (!r.ok()) Die("verify failed: " + r.failure->ToString());
  p.lines = r.lines;
  p.bytes = r.bytes;
  return p;
}

// One line per pass: wall-clock rate, rate per CPU second (per core), and the ratio of the
// per-core rate to a reference pass.
void Print(const char* name, const Pass& p, const Pass* limit = nullptr, const char* of = "") {
  std::printf("%-34s %9.0f lines/s %7.1f MB/s | per core %9.0f lines/s %7.1f MB/s", name,
              p.lines_per_s(), p.mb_per_s(), p.lines_per_cpu_s(), p.mb_per_cpu_s());
  if (limit != nullptr) {
    std::printf("  = %5.1f%% of %s", 100.0 * p.mb_per_cpu_s() / limit->mb_per_cpu_s(), of);
  }
  std::printf("\n");
}

// The load average minus this process's own threads: how busy the machine was otherwise.
double LoadElsewhere(const Pass& p) {
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  return std::max(0.0, load - p.cpu_seconds / p.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--lines=", 0) == 0)
      o.lines = std::strtoull(a.c_str() + 8, nullptr, 10);
    else if (a.rfind("--dir=", 0) == 0)
      o.dir = a.substr(6);
    else if (a.rfind("--threads=", 0) == 0)
      o.threads = static_cast<unsigned>(std::atoi(a.c_str() + 10));
    else if (a.rfind("--lines-per-file=", 0) == 0)
      o.lines_per_file = std::strtoull(a.c_str() + 17, nullptr, 10);
    else if (a == "--gzip")
      o.gzip = true;
    else
      Die("unknown argument " + a +
          " (usage: [--lines=N] [--lines-per-file=N] [--dir=DIR] [--threads=N] [--gzip])");
  }
  if (o.lines < 2 || o.threads < 1 || o.lines_per_file < 2) {
    Die("need --lines >= 2, --lines-per-file >= 2 and --threads >= 1");
  }
  if (o.dir.empty())
    o.dir = (fs::temp_directory_path() / ("strongroom-audit-bench-" + std::to_string(o.lines) +
                                          "-" + std::to_string(o.lines_per_file)))
                .string();
  fs::create_directories(o.dir);

  // The log, reused when a previous run left a complete one with the same number of lines.
  const fs::path done = fs::path(o.dir) / "complete";
  const fs::path pem = fs::path(o.dir) / "audit.pem";
  std::vector<std::string> files;
  const uint64_t nfiles = (o.lines + o.lines_per_file - 1) / o.lines_per_file;
  for (uint64_t i = 1; i <= nfiles; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "audit.log-%03llu", static_cast<unsigned long long>(i));
    files.push_back((fs::path(o.dir) / name).string());
  }
  if (!fs::exists(done)) {
    std::fprintf(stderr, "writing a %llu-line audit log in %s\n",
                 static_cast<unsigned long long>(o.lines), o.dir.c_str());
    PrivateKey key = Must(PrivateKey::Generate(KeyType::kEcdsaP256), "key");
    std::ofstream(pem) << Must(key.Public(), "public").ToPem();
    Writer w(o, key);
    files = w.Write();
    std::ofstream(done) << o.lines << "\n";
  }
  std::ifstream pem_in(pem);
  const std::string pem_text((std::istreambuf_iterator<char>(pem_in)), {});
  std::vector<PublicKey> keys;
  keys.push_back(Must(PublicKey::FromPem(pem_text), "audit.pem"));

  uint64_t disk = 0;
  for (const std::string& f : files) disk += fs::file_size(f);
  std::printf("audit log: %llu lines in %zu files, %.1f MB (%.0f bytes a line); %u cores\n",
              static_cast<unsigned long long>(o.lines), files.size(),
              static_cast<double>(disk) / 1e6,
              static_cast<double>(disk) / static_cast<double>(o.lines),
              std::thread::hardware_concurrency());

  // Warm the page cache, then the raw limits and the verifier, all on the same bytes.
  ReadAll(files, 0);
  const Pass read = ReadAll(files, 0);
  const Pass sha1 = ReadAll(files, 1);
  const Pass sha2 = ReadAll(files, 2);
  Print("raw: read, split lines", read);
  Print("raw: + SHA-256 per line (1 pass)", sha1, &read, "read");
  Print("raw: + SHA-256 per line, twice", sha2, &read, "read");
  const Pass v1 = Verify(files, keys, 1, false);
  Print("verify, 1 thread", v1, &sha2, "2 SHA-256 passes");
  std::printf("%-34s %78s  = %5.1f%% of 1 SHA-256 pass\n", "", "",
              100.0 * v1.mb_per_cpu_s() / sha1.mb_per_cpu_s());
  if (o.threads > 1) {
    const Pass vn = Verify(files, keys, o.threads, false);
    char name[64];
    std::snprintf(name, sizeof name, "verify, %u threads", o.threads);
    Print(name, vn, &v1, "1 thread");
    std::printf(
        "%-34s wall clock: %.2fx 1 thread = %.0f%% of linear in %u threads "
        "(with %.2f cores busy elsewhere on average)\n",
        "", vn.lines_per_s() / v1.lines_per_s(),
        100.0 * vn.lines_per_s() / v1.lines_per_s() / o.threads, o.threads, LoadElsewhere(vn));
  }
  // The full parser on the first file: what every line cost before the fast path.
  const Pass slow = Verify({files.front()}, keys, 1, true);
  Print("verify, 1 thread, full parser only", slow, &v1, "fast path");

  if (o.gzip && files.size() > 1) {
    std::vector<std::string> gz;
    for (size_t i = 0; i + 1 < files.size(); ++i) {
      const std::string z = files[i] + ".gz";
      if (!fs::exists(z)) {
        if (std::system(("gzip -k -6 '" + files[i] + "'").c_str()) != 0) Die("gzip failed");
      }
      gz.push_back(z);
    }
    gz.push_back(files.back());
    ReadAll(gz, 0);
    const Pass zread = ReadAll(gz, 0);
    Print("raw: read gzip files (inflate)", zread);
    const Pass z1 = Verify(gz, keys, 1, false);
    Print("verify gzip files, 1 thread", z1, &zread, "inflate");
    if (o.threads > 1) {
      const Pass zn = Verify(gz, keys, o.threads, false);
      Print("verify gzip files, all threads", zn, &z1, "1 thread");
    }
  }
  return 0;
}
