// The bare Boost.Beast responder of the benchmarks (kv_bench, kvread_bench --bare): the floor a
// KV read through the whole stack is compared with. One thread per connection, every request
// answered 200 with the same JSON body. Header-only: only the benchmarks that use it pull in
// Boost.Beast.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <thread>

#include "bench/bench_util.h"

namespace strongroom::bench {

// Listens on a free TCP port (port(), any IPv4 address) from construction to destruction.
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

}  // namespace strongroom::bench
