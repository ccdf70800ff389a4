// kv_bench: KV v2 read and write throughput and latency through the whole stack (HTTP worker ->
// broker -> barrier -> RocksDB), next to the raw limits measured in the same run on the same
// machine: a bare Boost.Beast responder returning a body of the same size, and raw RocksDB 1 KiB
// sync puts and warm gets. Prints ops/s, p50/p99 and the ratios. Not a test: run bench/run.sh.
//
// Usage: kv_bench [--seconds=N] [--clients=N] [--bin=DIR]
#include <fcntl.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

using strongroom::bench::Conn;
using strongroom::bench::Print;
using strongroom::bench::Result;
using strongroom::bench::RunLoad;

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

}  // namespace

int main(int argc, char** argv) {
  const strongroom::bench::Options opt =
      strongroom::bench::ParseOptions(argc, argv, STRONGROOM_BIN_DIR);
  const double seconds = opt.seconds;
  const int clients = opt.clients;
  signal(SIGPIPE, SIG_IGN);
  const std::string dir = strongroom::bench::MakeTempDir();
  if (dir.empty()) return 1;
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

  // --- raw file durability: append a line of an audit record's size and fdatasync it, one
  // writer (the cost one audit batch pays; group commit shares it between waiting requests).
  Result raw_sync1;
  {
    const std::string path = dir + "/raw-sync.log";
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 1;
    const std::string line(1500, 'a');
    raw_sync1 = RunLoad(1, seconds, [&](int) {
      return [&] {
        return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
               ::fdatasync(fd) == 0;
      };
    });
    ::close(fd);
  }

  // --- the appliance (dev mode: throwaway token, KV v2 at secret/).
  strongroom::bench::Daemon daemon;
  if (!daemon.Start({opt.bin + "/strongroomd", "-dev", "-dev-root-token-id=bench",
                     "-dev-listen-address=127.0.0.1:0"},
                    dir + "/daemon.log")) {
    return 1;
  }
  const int port = daemon.port();
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
  // The same with a file audit device on: two chained records per request, each on stable
  // storage before the operation runs / the answer leaves (group commit: one fdatasync and one
  // in-token MAC per batch of waiting records), a signed checkpoint every 1000 records.
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
  daemon.Stop();

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
  Print("append 1.5 KiB + fdatasync, 1 writer", raw_sync1, nullptr);
  std::printf("\nfull stack (HTTP worker -> broker -> barrier -> RocksDB)\n");
  Print("KV v2 read  (vs bare Beast)", kv_read, &bare);
  Print("KV v2 write (vs RocksDB sync put, N)", kv_write, &raw_putn);
  std::printf(
      "\nwith the file audit device on, durable (ratio: vs the same operation, audit off)\n");
  Print("KV v2 read,  audited", kv_read_audit, &kv_read);
  Print("KV v2 write, audited", kv_write_audit, &kv_write);
  std::printf("\n");
  return strongroom::bench::RemoveTree(dir) ? 0 : 1;
}
