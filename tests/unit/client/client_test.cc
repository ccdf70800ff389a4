// The client's pure parts: URLs (Vault's VAULT_ADDR forms), Vault's response shape and errors.
// Exchanges with a real server are tested end to end (tests/e2e/agent.test.js) and by the
// TokenReview tests (tests/integration/token_review_test.cc), which share client/http.
#include "client/client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "client/http.h"

namespace strongroom {
namespace {

using ::testing::HasSubstr;
namespace json = boost::json;

TEST(ParseUrlTest, HttpsHttpPortsAndPrefixes) {
  auto a = http::ParseUrl("https://vault.example:8200", "address", true);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "vault.example");
  EXPECT_EQ(a->port, 8200);
  EXPECT_FALSE(a->is_ip);
  auto b = http::ParseUrl("http://127.0.0.1", "address", true);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->port, 80);
  EXPECT_TRUE(b->is_ip);
  auto c = http::ParseUrl("HTTPS://[::1]:8443/prefix/", "address", true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->prefix, "/prefix");
  EXPECT_EQ(c->Where(), "[::1]:8443");
  EXPECT_EQ(http::ParseUrl("https://h", "x", true)->port, 443);
}

TEST(ParseUrlTest, RefusesWhatIsNotAServerAddress) {
  for (const char* bad : {"ftp://h", "h:8200", "http://", "https://u@h", "https://h?x=1",
                          "https://h:0", "https://h:70000", "https://h:+1", "https://h h",
                          "https://[::1", "https://[zz]:1", "https://h_/\x01"}) {
    EXPECT_FALSE(http::ParseUrl(bad, "address", true).ok()) << bad;
  }
  auto plain = http::ParseUrl("http://h", "kubernetes_host", false);
  EXPECT_EQ(plain.status().message(), "kubernetes_host must be an https:// URL, not http://");
}

TEST(ParseSecretTest, ReadsVaultsResponseShape) {
  auto s = client::ParseSecret(R"({"request_id":"r1","lease_id":"l","lease_duration":60,
    "renewable":true,"data":{"k":"v"},"warnings":["w"],
    "auth":{"client_token":"t","accessor":"a","policies":["default","p"],"lease_duration":30,
            "renewable":true}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->request_id, "r1");
  EXPECT_EQ(s->lease_id, "l");
  EXPECT_EQ(s->lease_duration, 60);
  EXPECT_TRUE(s->renewable);
  EXPECT_EQ(s->data.at("k").as_string(), "v");
  EXPECT_EQ(s->warnings, std::vector<std::string>{"w"});
  ASSERT_TRUE(s->auth.has_value());
  EXPECT_EQ(s->auth->client_token, "t");
  EXPECT_EQ(s->auth->policies, (std::vector<std::string>{"default", "p"}));
  EXPECT_EQ(s->auth->lease_duration, 30);
  EXPECT_TRUE(client::ParseSecret("")->data.is_null());
  EXPECT_EQ(client::ParseSecret("[1]").status().code(), absl::StatusCode::kInternal);
}

TEST(ParseSecretTest, ReadsWrapInfo) {
  auto s = client::ParseSecret(R"({"request_id":"","data":null,"auth":null,
    "wrap_info":{"token":"hvs.w","accessor":"acc","ttl":300,
                 "creation_time":"2026-12-07T12:54:52.5Z","creation_path":"auth/token/create",
                 "wrapped_accessor":"inner"}})");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->wrap_info.has_value());
  EXPECT_EQ(s->wrap_info->token, "hvs.w");
  EXPECT_EQ(s->wrap_info->accessor, "acc");
  EXPECT_EQ(s->wrap_info->ttl, 300);
  EXPECT_EQ(s->wrap_info->creation_time, "2026-12-07T12:54:52.5Z");
  EXPECT_EQ(s->wrap_info->creation_path, "auth/token/create");
  EXPECT_EQ(s->wrap_info->wrapped_accessor, "inner");
  EXPECT_FALSE(s->auth.has_value());
  EXPECT_FALSE(client::ParseSecret(R"({"wrap_info":null})")->wrap_info.has_value());
}

// Vault Agent's sink file for a wrapped token: api.SecretWrapInfo as Go's encoder writes it.
TEST(WrapInfoJsonTest, FieldsInGosOrderCompactWithANewline) {
  client::WrapInfo w;
  w.token = "hvs.w";
  w.accessor = "acc";
  w.ttl = 120;
  w.creation_time = "2026-12-07T12:54:52Z";
  w.creation_path = "sys/wrapping/wrap";
  EXPECT_EQ(client::WrapInfoJson(w),
            R"({"token":"hvs.w","accessor":"acc","ttl":120,"creation_time":"2026-12-07T12:54:52Z",)"
            R"("creation_path":"sys/wrapping/wrap","wrapped_accessor":""})"
            "\n");
  w.creation_path = "a&b<c>";
  EXPECT_THAT(client::WrapInfoJson(w), HasSubstr(R"("creation_path":"a\u0026b\u003cc\u003e")"));
}

client::Config LocalConfig() {
  client::Config config;
  config.address = "http://127.0.0.1:1";
  return config;
}

TEST(ClientTest, RefusesPathsThatLeaveTheApi) {
  auto c = client::Client::Create(LocalConfig());
  ASSERT_TRUE(c.ok());
  for (const char* bad : {"../sys/seal", "secret/../../x", "secret/./x", "secret/..", "/secret/x",
                          "a\r\nX: y", "a\x1b[2Jb", ""}) {
    auto r = c->Read(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // A good path with nobody listening: Unavailable, no HTTP status.
  auto r = c->Read("secret/data/x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("request to 127.0.0.1:1 failed: connect"));
  EXPECT_EQ(client::HttpStatusOf(r.status()), 0);
}

// Names Vault encodes are sent encoded: a "?" or a space is part of the key, never a query
// (seen through -output-curl-string's sink, which sends nothing).
TEST(ClientTest, EncodesPathBytesAndQuotesTheCurlCommand) {
  auto c = client::Client::Create(LocalConfig());
  ASSERT_TRUE(c.ok());
  std::string curl;
  c->SetCurlSink(&curl);
  c->SetToken("hvs.secret");
  EXPECT_TRUE(client::Client::IsCurlPrinted(c->Read("secret/data/my key?x=1#y;$(id)..z").status()));
  EXPECT_EQ(curl,
            "curl -H \"X-Vault-Request: true\" -H \"X-Vault-Token: $(strongroom print token)\" "
            "http://127.0.0.1:1/v1/secret/data/my%20key%3Fx%3D1%23y%3B%24%28id%29..z");
  EXPECT_TRUE(
      client::Client::IsCurlPrinted(c->Request("GET", "secret/x", nullptr, "a=1&b=2").status()));
  EXPECT_THAT(curl, ::testing::EndsWith(" 'http://127.0.0.1:1/v1/secret/x?a=1&b=2'"));
  EXPECT_EQ(curl.find("hvs.secret"), std::string::npos);
}

TEST(ClientTest, SendsTheWrapTtlAsVaultsApiDoes) {
  auto c = client::Client::Create(LocalConfig());
  ASSERT_TRUE(c.ok());
  std::string curl;
  c->SetCurlSink(&curl);
  c->SetToken("hvs.secret");
  // None by default, but 5m for a write to sys/wrapping/wrap (api.DefaultWrappingLookupFunc).
  c->Read("secret/data/x").IgnoreError();
  EXPECT_EQ(curl.find("X-Vault-Wrap-TTL"), std::string::npos) << curl;
  json::object data{{"a", "b"}};
  c->Request("PUT", "sys/wrapping/wrap", &data).IgnoreError();
  EXPECT_THAT(curl, HasSubstr("-H \"X-Vault-Wrap-TTL: 5m\""));
  c->Request("GET", "sys/wrapping/wrap").IgnoreError();
  EXPECT_EQ(curl.find("X-Vault-Wrap-TTL"), std::string::npos) << curl;
  // The client's TTL on every request; a request's own wins, "" sends none.
  c->SetWrapTtl("90s");
  c->Read("secret/data/x").IgnoreError();
  EXPECT_THAT(curl, HasSubstr("-H \"X-Vault-Wrap-TTL: 90s\""));
  client::RequestOptions none;
  none.wrap_ttl = "";
  c->Request("GET", "secret/data/x", nullptr, "", none).IgnoreError();
  EXPECT_EQ(curl.find("X-Vault-Wrap-TTL"), std::string::npos) << curl;
  client::RequestOptions own;
  own.wrap_ttl = "1h";
  c->Request("GET", "secret/data/x", nullptr, "", own).IgnoreError();
  EXPECT_THAT(curl, HasSubstr("-H \"X-Vault-Wrap-TTL: 1h\""));
  // Nothing but a duration goes into the header.
  for (const char* bad : {"5m\r\nX-Injected: 1", "5 m", "1111111111111111111111111111111111"}) {
    c->SetWrapTtl(bad);
    auto r = c->Read("secret/data/x");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("invalid wrap TTL")) << bad;
  }
}

// Vault's api Logical().Unwrap: the token goes in the body unless it is the client's own token,
// or the client has none (then it is the request's token, and the client keeps having none).
TEST(ClientTest, UnwrapSendsTheTokenAsVaultsApiDoes) {
  auto c = client::Client::Create(LocalConfig());
  ASSERT_TRUE(c.ok());
  std::string curl;
  c->SetCurlSink(&curl);
  c->SetToken("hvs.own");
  EXPECT_TRUE(client::Client::IsCurlPrinted(c->Unwrap(" hvs.wrapping\n").status()));
  EXPECT_THAT(curl, HasSubstr("-X PUT "));
  EXPECT_THAT(curl, HasSubstr("X-Vault-Token: $(strongroom print token)"));
  EXPECT_THAT(curl, HasSubstr(R"(-d '{"token":"hvs.wrapping"}')"));
  EXPECT_THAT(curl, ::testing::EndsWith("/v1/sys/wrapping/unwrap"));
  c->Unwrap("").IgnoreError();
  EXPECT_THAT(curl, HasSubstr("-d '{}'"));
  c->Unwrap("hvs.own").IgnoreError();
  EXPECT_THAT(curl, HasSubstr("-d '{}'"));
  c->ClearToken();
  c->Unwrap("hvs.wrapping").IgnoreError();
  EXPECT_THAT(curl, HasSubstr("X-Vault-Token: $(strongroom print token)"));
  EXPECT_THAT(curl, HasSubstr("-d '{}'"));
  EXPECT_EQ(c->token(), "");
  // Lookup is never wrapped and carries the token in the body.
  c->SetWrapTtl("5m");
  c->WrapLookup("hvs.wrapping").IgnoreError();
  EXPECT_THAT(curl, HasSubstr(R"(-d '{"token":"hvs.wrapping"}')"));
  EXPECT_EQ(curl.find("X-Vault-Wrap-TTL"), std::string::npos) << curl;
}

TEST(ClientTest, RefusesATokenThatWouldSplitHeaders) {
  auto c = client::Client::Create(LocalConfig());
  ASSERT_TRUE(c.ok());
  c->SetToken("hvs.x\r\nX-Injected: 1");
  EXPECT_THAT(c->Read("secret/data/x").status().message(), HasSubstr("control character"));
}

// A one-shot HTTP server on loopback that answers the first request with `response`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 1);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, response = std::move(response)] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)!read(c, buf, sizeof buf);
      (void)!write(c, response.data(), response.size());
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

std::string HttpAnswer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(ClientTest, ReportsVaultErrorsPrintableAndBounded) {
  // A hostile server's error: a forged log line, a terminal escape, and 100 KiB of text.
  OneShotServer server(HttpAnswer(
      403,
      R"({"errors":["permission denied\n2026-01-01T00:00:00Z [info] agent[1]: FORGED \u001b[31m", ")" +
          std::string(100 * 1024, 'x') + R"("]})"));
  client::Config config;
  config.address = "http://127.0.0.1:" + std::to_string(server.port());
  auto c = client::Client::Create(config);
  ASSERT_TRUE(c.ok());
  auto r = c->Read("secret/data/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client::HttpStatusOf(r.status()), 403);
  const std::string message(r.status().message());
  EXPECT_THAT(message, HasSubstr("Code: 403. Errors:\n\n* permission denied\\x0a2026"));
  EXPECT_THAT(message, HasSubstr("\\x1b[31m"));
  EXPECT_EQ(message.find('\x1b'), std::string::npos);
  EXPECT_EQ(message.find("\n2026"), std::string::npos);
  EXPECT_LT(message.size(), 6000u);
}

TEST(ClientTest, WrapReturnsTheWrapInfoAndRefusesAnAnswerWithout) {
  OneShotServer server(HttpAnswer(
      200, R"({"data":null,"wrap_info":{"token":"hvs.w","accessor":"a","ttl":60,)"
           R"("creation_time":"2026-12-07T12:54:52Z","creation_path":"sys/wrapping/wrap",)"
           R"("wrapped_accessor":""}})"));
  client::Config config;
  config.address = "http://127.0.0.1:" + std::to_string(server.port());
  auto c = client::Client::Create(config);
  ASSERT_TRUE(c.ok());
  auto w = c->Wrap(json::object{{"token", "hvs.x"}}, "60s");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->token, "hvs.w");
  EXPECT_EQ(w->ttl, 60);
  OneShotServer plain(HttpAnswer(200, R"({"data":{"token":"hvs.x"},"wrap_info":null})"));
  config.address = "http://127.0.0.1:" + std::to_string(plain.port());
  auto c2 = client::Client::Create(config);
  ASSERT_TRUE(c2.ok());
  auto w2 = c2->Wrap(json::object{{"token", "hvs.x"}}, "60s");
  EXPECT_EQ(w2.status().code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(c2->Wrap(json::object{{"a", "b"}}, "").ok());
}

}  // namespace
}  // namespace strongroom
