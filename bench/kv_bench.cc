// kv_bench: KV v2 read and write throughput and latency through the whole stack (HTTP worker ->
// broker -> barrier -> RocksDB), next to the raw limits measured in the same run on the same
// machine: a bare Boost.Beast responder returning a body of the same size, and raw RocksDB 1 KiB
// sync puts and warm gets. Prints ops/s, p50/p99 and the ratios. Not a test: run bench/run.sh.
//
// Usage: kv_bench [--seconds=N] [--clients=N] [--bin=DIR]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double ops_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

Result Summarize(std::vector<std::vector<double>>& per_thread, double seconds) {
  std::vector<double> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  Result r;
  if (all.empty()) return r;
  std::sort(all.begin(), all.end());
  r.ops_per_s = static_cast<double>(all.size()) / seconds;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

// Runs `op` in `threads` threads for `seconds`; each call's latency is recorded.
Result RunLoad(int threads, double seconds,
               const std::function<std::function<bool()>(int)>& make_op) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::vector<std::thread> ts;
  std::atomic<bool> stop{false};
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, i] {
      auto op = make_op(i);
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = Clock::now();
        if (!op()) break;
        lat[static_cast<size_t>(i)].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  return Summarize(lat, seconds);
}

// A keep-alive HTTP/1.1 client on one TCP connection.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  // Returns the status code (0 on error).
  int Do(const std::string& method, const std::string& path, const std::string& token,
         const std::string& body) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: b\r\nX-Vault-Token: " + token +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    if (fd_ < 0 ||
        send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return 0;
    }
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = 0;
        std::string head = buf_.substr(0, end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = head.find("content-length:");
        if (at != std::string::npos) cl = std::strtoul(head.c_str() + at + 15, nullptr, 10);
        if (buf_.size() >= end + 4 + cl) {
          int status = std::atoi(buf_.c_str() + 9);
          buf_.erase(0, end + 4 + cl);
          return status;
        }
      }
      char tmp[65536];
      ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return 0;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// The bare responder: Beast, one thread per connection, fixed body.
class BareServer {
 public:
  explicit BareServer(std::string body)
      : body_(std::move(body)), acceptor_(io_, {boost::asio::ip::tcp::v4(), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        boost::asio::ip::tcp::socket s(io_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stopping_) return;
        std::thread([this, sock = std::move(s)]() mutable { Serve(std::move(sock)); }).detach();
      }
    });
  }
  ~BareServer() {
    stopping_ = true;
    Conn wake(port_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void Serve(boost::asio::ip::tcp::socket sock) {
    namespace http = boost::beast::http;
    sock.set_option(boost::asio::ip::tcp::no_delay(true));
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(sock, buf, req, ec);
      if (ec) return;
      http::response<http::string_body> res(http::status::ok, 11);
      res.set(http::field::content_type, "application/json");
      res.body() = body_;
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec) return;
    }
  }
  std::string body_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

std::string Payload() { return std::string(1024 - 40, 'x'); }

void Print(const char* name, const Result& r, const Result* limit) {
  std::printf("%-38s %10.0f ops/s  p50 %8.1f us  p99 %8.1f us", name, r.ops_per_s, r.p50_us,
              r.p99_us);
  if (limit != nullptr && limit->ops_per_s > 0)
    std::printf("   = %5.1f%% of reference", 100.0 * r.ops_per_s / limit->ops_per_s);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int clients = 8;
  std::string bin = STRONGROOM_BIN_DIR;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--seconds=", 0) == 0) seconds = std::atof(a.c_str() + 10);
    if (a.rfind("--clients=", 0) == 0) clients = std::atoi(a.c_str() + 10);
    if (a.rfind("--bin=", 0) == 0) bin = a.substr(6);
  }
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/strongroom-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string value = Payload();
  std::printf("kv_bench: %.0f s per phase, %d clients, %u cores\n\n", seconds, clients,
              std::thread::hardware_concurrency());

  // --- raw RocksDB: 1 KiB sync puts (1 writer and `clients` writers: group commit), warm gets.
  Result raw_put1, raw_putn, raw_get;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    if (!rocksdb::DB::Open(o, dir + "/raw", &db).ok()) return 1;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::atomic<uint64_t> n{0};
    std::string v1k(1024, 'v');
    raw_put1 = RunLoad(1, seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v1k).ok(); };
    });
    raw_putn = RunLoad(clients, seconds, [&](int) {
      return [&] { return db->Put(wo, "k" + std::to_string(n++ % 10000), v1k).ok(); };
    });
    raw_get = RunLoad(clients, seconds, [&](int t) {
      return [&, t, i = uint64_t{0}]() mutable {
        std::string out;
        return db
            ->Get(rocksdb::ReadOptions(),
                  "k" + std::to_string((i++ * 7 + static_cast<uint64_t>(t)) % 10000), &out)
            .ok();
      };
    });
    delete db;
  }

  // --- the appliance (dev mode: throwaway token, KV v2 at secret/).
  const std::string log = dir + "/daemon.log";
  std::vector<std::string> args = {bin + "/strongroomd", "-dev", "-dev-root-token-id=bench",
                                   "-dev-listen-address=127.0.0.1:0"};
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  av.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  if (posix_spawn(&pid, av[0], &fa, nullptr, av.data(), environ) != 0) return 1;
  int port = 0;
  for (int i = 0; i < 400 && port == 0; ++i) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    std::smatch m;
    std::string text = ss.str();
    if (std::regex_search(text, m, std::regex(R"(API on http://127\.0\.0\.1:(\d+))")))
      port = std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (port == 0) return 1;
  const std::string body = "{\"data\":{\"v\":\"" + value + "\"}}";
  {
    Conn c(port);
    c.Do("POST", "/v1/secret/data/bench", "bench", body);
  }
  std::atomic<uint64_t> key{0};
  Result kv_write = RunLoad(clients, seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [&, c] {
      return c->Do("POST", "/v1/secret/data/w" + std::to_string(key++ % 2000), "bench", body) ==
             200;
    };
  });
  Result kv_read = RunLoad(clients, seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/v1/secret/data/bench", "bench", "") == 200; };
  });
  // The same with a file audit device on: two chained records per request, a signed checkpoint
  // every 1000 records (the default).
  {
    Conn c(port);
    const std::string enable =
        "{\"type\":\"file\",\"options\":{\"file_path\":\"" + dir + "/audit.log\"}}";
    if (c.Do("PUT", "/v1/sys/audit/file", "bench", enable) != 204) return 1;
  }
  Result kv_write_audit = RunLoad(clients, seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [&, c] {
      return c->Do("POST", "/v1/secret/data/w" + std::to_string(key++ % 2000), "bench", body) ==
             200;
    };
  });
  Result kv_read_audit = RunLoad(clients, seconds, [&](int) {
    auto c = std::make_shared<Conn>(port);
    return [c] { return c->Do("GET", "/v1/secret/data/bench", "bench", "") == 200; };
  });
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);

  // --- bare Beast responder with a body of a KV read's size.
  Result bare;
  {
    BareServer srv(std::string(1024 + 330, 'b'));
    bare = RunLoad(clients, seconds, [&](int) {
      auto c = std::make_shared<Conn>(srv.port());
      return [c] { return c->Do("GET", "/", "", "") == 200; };
    });
  }

  std::printf("raw limits (same machine, same run)\n");
  Print("RocksDB 1 KiB sync put, 1 writer", raw_put1, nullptr);
  Print("RocksDB 1 KiB sync put, N writers", raw_putn, nullptr);
  Print("RocksDB 1 KiB get (warm)", raw_get, nullptr);
  Print("bare Beast responder, ~1.3 KiB body", bare, nullptr);
  std::printf("\nfull stack (HTTP worker -> broker -> barrier -> RocksDB)\n");
  Print("KV v2 read  (vs bare Beast)", kv_read, &bare);
  Print("KV v2 write (vs RocksDB sync put, N)", kv_write, &raw_putn);
  std::printf("\nwith the file audit device on (ratio: vs the same operation, audit off)\n");
  Print("KV v2 read,  audited", kv_read_audit, &kv_read);
  Print("KV v2 write, audited", kv_write_audit, &kv_write);
  std::printf("\n");
  std::string cmd = "rm -rf '" + dir + "'";
  return system(cmd.c_str()) == 0 ? 0 : 1;
}
