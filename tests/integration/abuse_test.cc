// Hostile HTTP clients against the real strongroomd and its workers: slow headers (slowloris),
// bodies over max_request_size (413) and headers over max_header_bytes (431). Each answer on its
// own is checked in daemon_test.cc (BadInputGetsVaultStyleErrors); here the point is that while
// the abuse goes on, ordinary clients keep being served, and that the abusers' connections end.
// Vault API section: listener "tcp" parameters (max_request_size, http_read_timeout).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon.h"

namespace strongroom::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAreArray;
using Clock = std::chrono::steady_clock;

constexpr int kClientTimeoutMs = 10000;  // ordinary clients: generous, only against hanging

int Connect(int port) { return ConnectFrom("", "127.0.0.1", port); }

// A hostile client: sends `head`, then whatever `more` returns (until it returns ""), for as long
// as the server reads, and stops sending once the server answers. Returns what the server sent
// before it closed the connection (or `timeout_ms` passed).
std::string Abuse(int port, const std::string& head, const std::function<std::string()>& more,
                  int timeout_ms = 30000) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string pending = head, got;
  bool sending = true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (sending && pending.empty()) {
      pending = more ? more() : "";
      sending = !pending.empty();
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) < 0 && errno != EINTR) break;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[65536];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        sending = false;  // answered: stop sending, read to the end
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    }
    if (sending && (p.revents & POLLOUT) != 0) {
      const ssize_t n = send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n > 0) {
        pending.erase(0, static_cast<size_t>(n));
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        sending = false;  // the server stopped reading: collect what it answered
      }
    }
  }
  close(fd);
  return got;
}

// Hands out `total` bytes of `piece` (repeated) in parts of about 64 KiB, then "".
std::function<std::string()> Repeat(std::string piece, size_t total) {
  auto sent = std::make_shared<size_t>(0);
  return [piece = std::move(piece), total, sent]() -> std::string {
    if (*sent >= total) return "";
    std::string out;
    while (out.size() < 64 * 1024 && *sent < total) {
      out += piece;
      *sent += piece.size();
    }
    return out;
  };
}

class AbuseTest : public ::testing::Test {
 protected:
  void StartDaemon(Daemon::Options options) {
    d_ = std::make_unique<Daemon>(std::move(options));
    ASSERT_TRUE(d_->Start()) << d_->Log();
    d_->Init(1, 1);
    ASSERT_FALSE(d_->root_token().empty()) << d_->Log();
    ASSERT_EQ(d_->Root("POST", "/v1/sys/mounts/secret", {{"type", "kv-v2"}}).status, 204);
    workers_ = d_->WorkerPids();
  }

  HttpResponse Get(const std::string& path, const std::string& token = "") {
    HttpRequest r;
    r.path = path;
    if (!token.empty()) r.headers.emplace_back("X-Vault-Token", token);
    return SendHttp("127.0.0.1", d_->port(), r, kClientTimeoutMs);
  }

  // One ordinary client's worth of work: health, a KV write and the read of it.
  void ExpectServed(int round) {
    EXPECT_EQ(Get("/v1/sys/health").status, 200) << "round " << round;
    const std::string value = "round-" + std::to_string(round);
    HttpRequest w{"POST",
                  "/v1/secret/data/probe",
                  nlohmann::json{{"data", {{"v", value}}}}.dump(),
                  {{"X-Vault-Token", d_->root_token()}}};
    EXPECT_EQ(SendHttp("127.0.0.1", d_->port(), w, kClientTimeoutMs).status, 200)
        << "round " << round;
    EXPECT_EQ(Get("/v1/secret/data/probe", d_->root_token()).Json()["data"]["data"]["v"], value)
        << "round " << round;
  }

  // No worker crashed or was restarted along the way.
  void ExpectWorkersUndisturbed() {
    EXPECT_THAT(d_->Log(), Not(HasSubstr("restarting in"))) << d_->Log();
    EXPECT_THAT(d_->WorkerPids(), UnorderedElementsAreArray(workers_));
  }

  // Runs `abusers` threads that each send hostile requests, one after the other (`abuse(i, k)`
  // is abuser i's k-th; it returns the server's answer), for as long as this thread acts as an
  // ordinary client for `rounds` rounds. Returns every answer, per abuser.
  std::vector<std::vector<std::string>> WhileServing(
      int abusers, int rounds, const std::function<std::string(int, int)>& abuse) {
    std::vector<std::vector<std::string>> answers(static_cast<size_t>(abusers));
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < abusers; ++i) {
      threads.emplace_back([&, i] {
        for (int k = 0; !stop.load(); ++k) answers[static_cast<size_t>(i)].push_back(abuse(i, k));
      });
    }
    for (int round = 1; round <= rounds; ++round) ExpectServed(round);
    stop = true;
    for (auto& t : threads) t.join();
    size_t total = 0;
    for (const auto& each : answers) total += each.size();
    RecordProperty("abusive_requests", static_cast<int>(total));
    return answers;
  }

  std::unique_ptr<Daemon> d_;
  std::vector<pid_t> workers_;
};

TEST_F(AbuseTest, SlowHeadersAreCutOffAtTheReadTimeoutWhileOthersAreServed) {
  Daemon::Options options;
  options.extra_listener = "  http_read_timeout = \"2s\"\n";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(options));

  // 50 slowloris connections, one header byte per second each, and (like the real thing) a new
  // one for every connection the server ends, for the first 5 seconds. The header is far too
  // long to be complete at this rate before the read timeout.
  const std::string head =
      "GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(100, 's') +
      "\r\n\r\n";
  constexpr int kSlow = 50;
  constexpr int kDribbleSeconds = 5;
  struct Slow {
    int fd = -1;
    size_t sent = 0;
  };
  int opened = 0, connect_failed = 0, ended_by_server = 0, answered = 0;
  auto open_slow = [&] {
    Slow s;
    ++opened;
    s.fd = Connect(d_->port());
    if (s.fd < 0) {
      ++connect_failed;
      return s;
    }
    fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
    if (send(s.fd, head.data(), 1, MSG_NOSIGNAL) == 1) s.sent = 1;
    return s;
  };
  std::vector<Slow> slow;
  for (int i = 0; i < kSlow; ++i) slow.push_back(open_slow());
  for (int tick = 1;; ++tick) {
    const auto next = Clock::now() + std::chrono::seconds(1);
    ASSERT_LT(tick, 120) << "slow connections still open after 2 minutes\n" << d_->Log();
    ExpectServed(tick);  // while the slow ones dribble
    int open_now = 0;
    for (Slow& s : slow) {
      if (s.fd < 0) continue;
      char buf[4096];
      const ssize_t n = recv(s.fd, buf, sizeof buf, 0);
      if (n > 0) ++answered;  // the server should end these without an answer
      bool ended = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      if (!ended && s.sent < head.size()) {
        if (send(s.fd, head.data() + s.sent, 1, MSG_NOSIGNAL) == 1) {
          ++s.sent;
        } else {
          ended = errno != EAGAIN && errno != EWOULDBLOCK;
        }
      }
      if (!ended) {
        ++open_now;
        continue;
      }
      close(s.fd);
      s = Slow{};
      ++ended_by_server;
      if (tick <= kDribbleSeconds) {
        s = open_slow();
        if (s.fd >= 0) ++open_now;
      }
    }
    if (tick > kDribbleSeconds && open_now == 0) break;
    std::this_thread::sleep_until(next);
  }
  EXPECT_EQ(connect_failed, 0);
  EXPECT_EQ(answered, 0);
  EXPECT_EQ(ended_by_server, opened);  // every slow connection was ended by the server
  RecordProperty("slow_connections", opened);
  ExpectWorkersUndisturbed();
  ExpectServed(0);
}

TEST_F(AbuseTest, BodiesOverTheLimitGet413WhileOthersAreServed) {
  Daemon::Options options;
  options.extra_listener = "  max_request_size = 1048576\n";
  ASSERT_NO_FATAL_FAILURE(StartDaemon(options));
  constexpr size_t kBody = 8u << 20;  // 8 MiB against a 1 MiB limit

  // Four clients sending, in turn, a declared Content-Length over the limit (with the body
  // following it) and a chunked body that only goes over the limit as it arrives.
  auto answers = WhileServing(4, 20, [&](int i, int k) {
    const bool chunked = (i + k) % 2 == 1;
    const std::string head =
        "POST /v1/secret/data/big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: " +
        d_->root_token() + "\r\nContent-Type: application/json\r\n" +
        (chunked ? std::string("Transfer-Encoding: chunked\r\n")
                 : "Content-Length: " + std::to_string(kBody) + "\r\n") +
        "\r\n";
    const std::string chunk = std::string("2000\r\n") + std::string(0x2000, 'a') + "\r\n";
    return Abuse(d_->port(), head,
                 chunked ? Repeat(chunk, kBody) : Repeat(std::string(1024, 'a'), kBody));
  });
  for (const auto& each : answers) {
    EXPECT_FALSE(each.empty());
    for (const std::string& a : each) {
      EXPECT_THAT(a, StartsWith("HTTP/1.1 413 ")) << a.substr(0, 2000);
      EXPECT_THAT(a, HasSubstr("request body too large"));
    }
  }
  // A body just under the limit is still accepted.
  HttpRequest w{"POST",
                "/v1/secret/data/just-under",
                nlohmann::json{{"data", {{"v", std::string(900 * 1000, 'x')}}}}.dump(),
                {{"X-Vault-Token", d_->root_token()}}};
  EXPECT_EQ(SendHttp("127.0.0.1", d_->port(), w, kClientTimeoutMs).status, 200);
  ExpectWorkersUndisturbed();
}

TEST_F(AbuseTest, HeadersOverTheLimitGet431WhileOthersAreServed) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(Daemon::Options()));  // max_header_bytes: 16 KiB
  const std::string request = "GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";

  // Four clients sending, in turn, a 17 KiB header, a 64 KiB header, and header lines that never
  // end.
  auto answers = WhileServing(4, 20, [&](int i, int k) {
    switch ((i + k) % 3) {
      case 0:
        return Abuse(d_->port(), request + "X-Big: " + std::string(17 * 1024, 'h') + "\r\n\r\n",
                     nullptr);
      case 1:
        return Abuse(d_->port(), request + "X-Big: " + std::string(64 * 1024, 'h') + "\r\n\r\n",
                     nullptr);
      default:
        return Abuse(d_->port(), request,
                     Repeat("X-More: " + std::string(1000, 'm') + "\r\n", 64u << 20));
    }
  });
  for (const auto& each : answers) {
    EXPECT_FALSE(each.empty());
    for (const std::string& a : each) {
      EXPECT_THAT(a, StartsWith("HTTP/1.1 431 ")) << a.substr(0, 2000);
      EXPECT_THAT(a, HasSubstr("request header fields too large"));
    }
  }
  // Headers just under the limit are still fine.
  HttpRequest h{"GET", "/v1/sys/health", "", {{"X-Big", std::string(12 * 1024, 'h')}}};
  EXPECT_EQ(SendHttp("127.0.0.1", d_->port(), h, kClientTimeoutMs).status, 200);
  ExpectWorkersUndisturbed();
}

}  // namespace
}  // namespace strongroom::testing
