// Issue 23 item 8: a hostile JSON body is refused by the worker, before anything reaches the
// broker, within Vault's listener limits (max_json_depth, max_json_string_value_length,
// max_json_object_entry_count, max_json_array_element_count: Vault 1.20.3 / 1.19.9, HCSEC-2025-24,
// CVE-2025-6203) and OpenBao's (max_request_json_memory, max_request_json_strings: OpenBao 2.4.1).
// Vault API section: listener "tcp" parameters.
#include <gmock/gmock.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

constexpr size_t kMiB = 1024 * 1024;
// Just under max_request_size (32 MiB), so the body itself is accepted and must be looked at.
constexpr size_t kBodyBytes = 32 * kMiB - 4096;

// A value from /proc/<pid>/status, in kB (VmRSS, VmHWM); -1 when absent.
long ProcStatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  }
  return -1;
}

// {"k":[<item>,<item>,...]} of about `bytes`, compact (as a client would send it).
std::string Flat(const std::string& item, size_t bytes) {
  std::string body = R"({"k":[)";
  body.reserve(bytes + 64);
  while (body.size() + item.size() + 3 < bytes) body += item + ",";
  body += item + "]}";
  return body;
}

// The same in arrays of `per` items each ({"k":[[...],[...],...]}): no array is over Vault's
// element count, so only a limit on the whole body stops it.
std::string Nested(const std::string& item, size_t per, size_t bytes) {
  std::string inner = "[";
  for (size_t i = 0; i < per; ++i) inner += (i ? "," : "") + item;
  inner += "]";
  std::string body = R"({"k":[)";
  body.reserve(bytes + 64);
  while (body.size() + 2 * inner.size() + 3 < bytes) body += inner + ",";
  body += inner + "]}";
  return body;
}

void ExpectRefused(const HttpResponse& r, int status, const std::string& error,
                   const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body.substr(0, 300);
  const json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("errors") && j["errors"].is_array() &&
              j["errors"].size() == 1)
      << what << ": " << r.body.substr(0, 300);
  EXPECT_EQ(j["errors"][0], error) << what;
}

constexpr char kDepthError[] = "JSON input exceeds allowed nesting depth";
constexpr char kStringError[] = "JSON string value exceeds allowed length";
constexpr char kNumberError[] = "JSON number value exceeds allowed length";
constexpr char kObjectError[] = "JSON object exceeds allowed entry count";
constexpr char kArrayError[] = "JSON array exceeds allowed element count";
constexpr char kMemoryError[] =
    "refused JSON input due to high complexity: exceeded maximum estimated memory limits";
constexpr char kStringsError[] =
    "refused JSON input due to high complexity: exceeded maximum number of strings";

class JsonLimitsTest : public AdversarialTest {
 protected:
  HttpResponse Put(const std::string& path, const std::string& body,
                   const std::string& token = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("X-Vault-Token", token);
    return SendHttp("127.0.0.1", d_.port(), HttpRequest{"PUT", path, body, headers}, 120000);
  }
  // The server still answers, and a root write and read still work.
  void ExpectStillServing(const std::string& name) {
    EXPECT_EQ(d_.Call("GET", "/v1/sys/health").status, 200);
    ASSERT_EQ(d_.Root("PUT", "/v1/secret/data/" + name, {{"data", {{"v", name}}}}).status, 200);
    EXPECT_EQ(d_.Root("GET", "/v1/secret/data/" + name).Json()["data"]["data"]["v"], name);
  }
};

// The broker's memory is what an anonymous client must not be able to spend. Under
// AddressSanitizer freed memory waits in a quarantine (256 MB by default) before it is reused;
// the daemon is started with a small one so that the peak shows what requests hold.
class JsonLimitsMemoryTest : public JsonLimitsTest {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_ADDRESS__)
    const char* old = std::getenv("ASAN_OPTIONS");
    const std::string saved = old != nullptr ? old : "";
    const std::string small = saved + (saved.empty() ? "" : ":") + "quarantine_size_mb=4";
    setenv("ASAN_OPTIONS", small.c_str(), 1);
    JsonLimitsTest::SetUp();
    setenv("ASAN_OPTIONS", saved.c_str(), 1);
#else
    JsonLimitsTest::SetUp();
#endif
  }
};

// 32 MiB bodies of millions of tiny values with no token (and a forged one). Before the fix the
// worker passed them on, the broker parsed each into ~8 million values before it looked at the
// token, and answered 403 at a peak of about 485 MB. Now the worker refuses each at once with
// Vault's (or OpenBao's) status and text, and the broker never sees them.
TEST_F(JsonLimitsMemoryTest, BrokerMemoryStaysBoundedUnderA32MiBAnonymousBody) {
  struct Case {
    const char* what;
    std::string body;
    std::string token;
    int status;
    const char* error;
  };
  std::vector<Case> cases;
  cases.push_back({"one array of tiny strings", Flat(R"("a")", kBodyBytes), "", 500, kArrayError});
  cases.push_back({"arrays of 10,000 tiny strings", Nested(R"("a")", 10000, kBodyBytes),
                   "hvs.forged-token", 400, kStringsError});
  cases.push_back(
      {"arrays of 10,000 empty arrays", Nested("[]", 10000, kBodyBytes), "", 400, kMemoryError});

  const pid_t broker = d_.pid();
  const long rss_before = ProcStatusKb(broker, "VmRSS");
  ASSERT_GT(rss_before, 0);
  // Peak memory from here on (5 resets VmHWM to the current RSS).
  { std::ofstream("/proc/" + std::to_string(broker) + "/clear_refs") << "5"; }
  for (const Case& c : cases) {
    ASSERT_GT(c.body.size(), kBodyBytes - 64 * 1024);
    ASSERT_LE(c.body.size(), 32 * kMiB);
    const auto start = std::chrono::steady_clock::now();
    HttpResponse r = Put("/v1/secret/data/x", c.body, c.token);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::cout << c.what << ": " << c.body.size() << " bytes answered " << r.status << " in " << ms
              << " ms (not asserted)\n";
    ExpectRefused(r, c.status, c.error, c.what);
  }
  const long peak = ProcStatusKb(broker, "VmHWM");
  std::cout << "broker VmRSS before " << rss_before << " kB, peak " << peak << " kB\n";
  RecordProperty("broker_rss_before_kb", static_cast<int>(rss_before));
  RecordProperty("broker_peak_kb", static_cast<int>(peak));
  EXPECT_LT(peak, 256 * 1024) << "broker VmRSS before " << rss_before << " kB, peak " << peak
                              << " kB";
  EXPECT_EQ(d_.WorkerPids().size(), 2u);
  ExpectStillServing("after-flood");
}

// A compromised worker is hostile too: worker 0 is tests/support/fake_worker.cc in mode
// "json-flood", which sends the broker a request with no token whose data is 32 MiB of tiny
// strings (what the real worker refuses). The broker checks the same limits before it parses:
// it answers with the limit's text and its memory stays bounded. Without the broker's check it
// parsed the data into ~8 million values (peak 447 MB) before it looked at the token.
class CompromisedWorkerJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strongroom-fakebin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    bin_dir_ = tmpl;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{BuildDir() + "/strongroomd", "strongroomd"},
          {STRONGROOM_FAKE_WORKER, "strongroom-worker"}}) {
      std::error_code ec;
      std::filesystem::copy_file(from, bin_dir_ + "/" + to, ec);
      ASSERT_FALSE(ec) << from << ": " << ec.message();
      std::filesystem::permissions(bin_dir_ + "/" + to, std::filesystem::perms::owner_all |
                                                            std::filesystem::perms::group_exec |
                                                            std::filesystem::perms::others_exec);
    }
    std::ofstream(bin_dir_ + "/real-worker-path") << BuildDir() << "/strongroom-worker\n";
    std::ofstream(bin_dir_ + "/fake-worker-mode") << "json-flood\n";
    Daemon::Options options;
    options.workers = 2;
    options.bin_dir = bin_dir_;
    options.serving_workers = 1;  // worker 0 never serves
    d_ = std::make_unique<Daemon>(options);
#if defined(__SANITIZE_ADDRESS__)  // as in JsonLimitsMemoryTest
    const char* old = std::getenv("ASAN_OPTIONS");
    const std::string saved = old != nullptr ? old : "";
    setenv("ASAN_OPTIONS", (saved + (saved.empty() ? "" : ":") + "quarantine_size_mb=4").c_str(),
           1);
    ASSERT_TRUE(d_->Start()) << d_->Log();
    setenv("ASAN_OPTIONS", saved.c_str(), 1);
#else
    ASSERT_TRUE(d_->Start()) << d_->Log();
#endif
  }
  void TearDown() override {
    d_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(bin_dir_, ignored);
  }
  std::string bin_dir_;
  std::unique_ptr<Daemon> d_;
};

TEST_F(CompromisedWorkerJsonTest, BrokerRefusesTheFloodBeforeParsingIt) {
  // The fake worker sends its flood once the broker is initialised.
  const long rss_before = ProcStatusKb(d_->pid(), "VmRSS");
  ASSERT_GT(rss_before, 0);
  { std::ofstream("/proc/" + std::to_string(d_->pid()) + "/clear_refs") << "5"; }
  d_->Init(1, 1);
  ASSERT_TRUE(d_->WaitForLog("json-flood: answered", 60000)) << d_->Log();
  const long peak = ProcStatusKb(d_->pid(), "VmHWM");
  std::cout << "broker VmRSS before " << rss_before << " kB, peak " << peak << " kB\n";
  RecordProperty("broker_peak_growth_kb", static_cast<int>(peak - rss_before));
  EXPECT_THAT(d_->Log(), ::testing::HasSubstr(std::string("json-flood: answered ") + kArrayError));
  // What the broker holds is the request's frame, as read and as decoded (2 x 32 MiB); parsed,
  // the data took 400 MB more.
  EXPECT_LT(peak - rss_before, 128 * 1024)
      << "broker VmRSS before " << rss_before << " kB, peak " << peak << " kB";
  // Real clients, served by the real worker, are unaffected.
  EXPECT_EQ(d_->Call("GET", "/v1/sys/health").status, 200);
}

// Every limit with its default, just within (served) and just over (refused, root token or not,
// with Vault's status and text), and the server keeps serving after each refusal.
TEST_F(JsonLimitsTest, EachLimitIsRefusedWithVaultsStatusAndText) {
  auto data = [](const std::string& v) { return R"({"data":{"v":)" + v + "}}"; };
  auto repeat = [](const std::string& item, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + item;
    return out;
  };
  auto keys = [](size_t n) {
    std::string out = "{";
    for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + ("\"k" + std::to_string(i) + "\":1");
    return out + "}";
  };
  struct Case {
    const char* what;
    std::string within, over;
    int status;
    const char* error;
  };
  const std::vector<Case> cases = {
      // {"data":{"v": is two levels: 62 more are the 64th, 63 the 65th.
      {"nesting depth", data(std::string(62, '[') + std::string(62, ']')),
       data(std::string(63, '[') + std::string(63, ']')), 500, kDepthError},
      {"string length", data("\"" + std::string(kMiB, 'x') + "\""),
       data("\"" + std::string(kMiB + 1, 'x') + "\""), 500, kStringError},
      // 1.000...0: a number as long as a string may be, which parses (to 1).
      {"number length", data("1." + std::string(kMiB - 2, '0')),
       data("1." + std::string(kMiB - 1, '0')), 500, kNumberError},
      {"object entries", R"({"data":)" + keys(10000) + "}", R"({"data":)" + keys(10001) + "}", 500,
       kObjectError},
      {"array elements", data("[" + repeat("1", 10000) + "]"), data("[" + repeat("1", 10001) + "]"),
       500, kArrayError},
      // 2 keys and 99,998 (or 99,999) values: 100,000 strings is the most.
      {"strings",
       data("[" + repeat("[" + repeat(R"("s")", 9999) + "]", 10) + "," + repeat(R"("s")", 8) + "]"),
       data("[" + repeat("[" + repeat(R"("s")", 9999) + "]", 10) + "," + repeat(R"("s")", 9) + "]"),
       400, kStringsError},
      // {"data":{"v":[ costs 173 (objects and arrays 40, entries 24 + the key) and each array
      // in it 40: 851,963 arrays are 34,078,693 bytes (within 32 MiB + 512 KiB), one more is over.
      {"estimated memory",
       data("[" + repeat("[" + repeat("[]", 9999) + "]", 85) + "," + repeat("[]", 1963) + "]"),
       data("[" + repeat("[" + repeat("[]", 9999) + "]", 85) + "," + repeat("[]", 1964) + "]"), 400,
       kMemoryError},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string path = "/v1/secret/data/limit-" + std::to_string(n++);
    EXPECT_EQ(Put(path, c.within, d_.root_token()).status, 200) << c.what;
    ExpectRefused(Put(path, c.over, d_.root_token()), c.status, c.error,
                  std::string(c.what) + " (root token)");
    ExpectRefused(Put(path, c.over), c.status, c.error, std::string(c.what) + " (no token)");
    ExpectStillServing("after-" + std::to_string(n));
  }
}

// Every limit is set in the listener stanza; the configured values hold on both sides.
class ConfiguredJsonLimitsTest : public JsonLimitsTest {
 protected:
  ConfiguredJsonLimitsTest() {
    d_.options().extra_listener =
        "  max_json_depth = 5\n"
        "  max_json_string_value_length = 20\n"
        "  max_json_object_entry_count = 3\n"
        "  max_json_array_element_count = 4\n"
        "  max_request_json_strings = 12\n"
        "  max_request_json_memory = 2048\n";
  }
};

TEST_F(ConfiguredJsonLimitsTest, ListenerSettingsApply) {
  const std::string& root = d_.root_token();
  auto put = [&](const std::string& v) {
    return Put("/v1/secret/data/c", R"({"data":{"v":)" + v + "}}", root);
  };
  // Depth: {"data":{"v": is two levels, so three more arrays are the fifth.
  EXPECT_EQ(put("[[[1]]]").status, 200);
  ExpectRefused(put("[[[[1]]]]"), 500, kDepthError, "depth");
  EXPECT_EQ(put("\"" + std::string(20, 'x') + "\"").status, 200);
  ExpectRefused(put("\"" + std::string(21, 'x') + "\""), 500, kStringError, "string length");
  EXPECT_EQ(put(R"({"a":1,"b":2,"c":3})").status, 200);
  ExpectRefused(put(R"({"a":1,"b":2,"c":3,"d":4})"), 500, kObjectError, "object entries");
  EXPECT_EQ(put("[1,2,3,4]").status, 200);
  ExpectRefused(put("[1,2,3,4,5]"), 500, kArrayError, "array elements");
  // 2 keys + 10 values = 12 strings.
  EXPECT_EQ(put(R"([["a","b","c","d"],["e","f","g","h"],["i","j"]])").status, 200);
  ExpectRefused(put(R"([["a","b","c","d"],["e","f","g","h"],["i","j","k"]])"), 400, kStringsError,
                "strings");
  // Memory: {"data":{"v": costs 133 (2 objects of 40, entries of 24+4 and 24+1), each array 40
  // and each number 24; three blocks [[1,2,3,4] x4] of 584 after the outer array's 40 make
  // 1,925, and [[1]] then 2,029 (within 2,048) while [[1,2]] would be 2,053.
  const std::string block = "[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]";
  const std::string blocks = block + "," + block + "," + block;
  EXPECT_EQ(put("[" + blocks + ",[[1]]]").status, 200);
  ExpectRefused(put("[" + blocks + ",[[1,2]]]"), 400, kMemoryError, "memory");
  ExpectStillServing("configured");
}

}  // namespace
}  // namespace strongroom::testing
