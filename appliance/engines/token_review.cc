// The one broker translation unit that compiles Boost.Beast/Asio: a synchronous HTTPS client for
// one TokenReview. Every step is an async operation on a private io_context run up to one
// deadline; when the deadline passes the socket is closed, which completes the pending operation
// with an error. Name resolution runs getaddrinfo on a detached thread so that a slow resolver
// cannot hold the call past the deadline either.
#include "appliance/engines/token_review.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appliance/core/json.h"
#include "base/strings.h"

namespace strongroom::engines {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kTokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";
// Vault's message for a 401 from the API server (path_login.go / token_review.go).
constexpr std::string_view kUnauthorizedMessage =
    "lookup failed: service account unauthorized; this could mean it has been deleted or "
    "recreated with a new token";
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr size_t kMaxServerMessageBytes = 1024;

// kubernetes_host split into what the connection needs.
struct Target {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 443;
  bool is_ip = false;     // no SNI; the certificate must name the address
  std::string authority;  // Host header: as written in the URL ("[::1]:6443", "kube")
  std::string target;     // request target: prefix + kTokenReviewPath
  std::string Where() const {
    return is_ip && host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                        : absl::StrCat(host, ":", port);
  }
};

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c == 0x7f) return false;  // also refuses space and bytes >= 0x80
  }
  return true;
}

absl::StatusOr<Target> ParseHost(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  if (url.size() >= 7 && absl::EqualsIgnoreCase(Av(url.substr(0, 7)), "http://")) {
    return absl::InvalidArgumentError("kubernetes_host must be an https:// URL, not http://");
  }
  if (url.size() < kHttps.size() || !absl::EqualsIgnoreCase(Av(url.substr(0, 8)), Av(kHttps))) {
    return absl::InvalidArgumentError("kubernetes_host must be an https:// URL");
  }
  std::string_view rest = url.substr(kHttps.size());
  if (!IsPrintableAscii(rest)) {
    return absl::InvalidArgumentError("kubernetes_host contains invalid characters");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return absl::InvalidArgumentError("kubernetes_host must not have a query or fragment");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError("kubernetes_host must not contain user information");
  }
  Target t;
  t.authority = std::string(authority);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("kubernetes_host: unterminated IPv6 address");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return absl::InvalidArgumentError("kubernetes_host: bad port");
      port = after.substr(1);
    }
    boost::system::error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return absl::InvalidArgumentError("kubernetes_host: bad IPv6 address");
    t.is_ip = true;
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (char c : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return absl::InvalidArgumentError("kubernetes_host: bad host name");
      }
    }
    boost::system::error_code ec;
    asio::ip::make_address_v4(std::string(host), ec);
    t.is_ip = !ec;
  }
  if (host.empty()) return absl::InvalidArgumentError("kubernetes_host: no host");
  t.host = std::string(host);
  if (!port.empty()) {
    uint32_t p = 0;
    if (port.size() > 5 || !absl::SimpleAtoi(Av(port), &p) || p == 0 || p > 65535 ||
        !absl::ascii_isdigit(static_cast<unsigned char>(port.front()))) {
      return absl::InvalidArgumentError("kubernetes_host: bad port");
    }
    t.port = static_cast<uint16_t>(p);
  }
  // Vault trims one trailing slash before appending the API path.
  if (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  t.target = absl::StrCat(Av(prefix), Av(kTokenReviewPath));
  return t;
}

// Go's encoding/json string encoding (json.Marshal, HTML escaping on, Go >= 1.22): <, >, & and
// control characters as \u00XX (\b \f \n \r \t short), U+2028/U+2029 escaped, invalid UTF-8
// bytes replaced by \ufffd.
void AppendGoJsonString(std::string& out, std::string_view s) {
  constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      switch (b) {
        case '"':
        case '\\':
          out.push_back('\\');
          out.push_back(static_cast<char>(b));
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default:
          if (b < 0x20 || b == '<' || b == '>' || b == '&') {
            out.append("\\u00");
            out.push_back(kHex[b >> 4]);
            out.push_back(kHex[b & 0xf]);
          } else {
            out.push_back(static_cast<char>(b));
          }
      }
      ++i;
      continue;
    }
    // One UTF-8 sequence, validated like Go's utf8.DecodeRuneInString.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      if (b == 0xe0) lo = 0xa0;
      if (b == 0xed) hi = 0x9f;  // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      if (b == 0xf0) lo = 0x90;
      if (b == 0xf4) hi = 0x8f;
    }
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      valid = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xbf);
    }
    if (!valid) {
      out.append("\\ufffd");
      ++i;
      continue;
    }
    if (len == 3 && b == 0xe2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      out.append(static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029");
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out.push_back('"');
}

// Replaces the credentials wherever a server echoed them, and bounds the length.
std::string Scrub(std::string text, const TokenReviewRequest& req) {
  for (const std::string* secret : {&req.token, &req.bearer}) {
    if (!secret->empty()) {
      text = absl::StrReplaceAll(Av(text), {{Av(*secret), "[redacted]"}});
    }
  }
  if (text.size() > kMaxServerMessageBytes) {
    text.resize(kMaxServerMessageBytes);
    text.append("...");
  }
  return text;
}

// The `message` of a Kubernetes Status object, or "" when the body is not one.
std::string StatusMessage(const json::object& o) {
  auto it = o.find("message");
  if (it == o.end() || !it->value().is_string()) return "";
  return std::string(it->value().as_string());
}

absl::Status Failed(unsigned code, std::string_view reason, std::string_view message,
                    const TokenReviewRequest& req) {
  std::string detail = message.empty() ? std::string(reason) : std::string(message);
  return absl::PermissionDeniedError(
      absl::StrCat("TokenReview failed: ", code, detail.empty() ? "" : " ", Scrub(detail, req)));
}

absl::StatusOr<TokenReviewResult> ParseReview(unsigned code, std::string_view reason,
                                              const std::string& body,
                                              const TokenReviewRequest& req) {
  if (code == 401) return absl::PermissionDeniedError(std::string(kUnauthorizedMessage));
  auto parsed = core::ParseObject(body);
  if (code < 200 || code > 299) {
    return Failed(code, reason, parsed.ok() ? StatusMessage(*parsed) : "", req);
  }
  auto malformed = [&](std::string_view what) {
    return absl::PermissionDeniedError(
        absl::StrCat("TokenReview failed: malformed response: ", Av(what)));
  };
  if (!parsed.ok()) return malformed("not a JSON object");
  const json::object& o = *parsed;
  // client-go turns a Status object that is not Success into an error even on 2xx.
  if (auto kind = o.find("kind");
      kind != o.end() && kind->value().is_string() && kind->value().as_string() == "Status") {
    auto st = o.find("status");
    if (st == o.end() || !st->value().is_string() || st->value().as_string() != "Success") {
      return Failed(code, reason, StatusMessage(o), req);
    }
    return malformed("a Success Status instead of a TokenReview");
  }
  TokenReviewResult result;
  auto st = o.find("status");
  if (st == o.end() || st->value().is_null()) return result;
  if (!st->value().is_object()) return malformed("status is not an object");
  const json::object& status = st->value().as_object();
  for (const auto& [key, value] : status) {
    if (value.is_null()) continue;
    if (key == "authenticated") {
      if (!value.is_bool()) return malformed("status.authenticated is not a boolean");
      result.authenticated = value.as_bool();
    } else if (key == "error") {
      if (!value.is_string()) return malformed("status.error is not a string");
      result.error = Scrub(std::string(value.as_string()), req);
    } else if (key == "audiences") {
      if (!value.is_array()) return malformed("status.audiences is not an array");
      for (const json::value& a : value.as_array()) {
        if (!a.is_string()) return malformed("status.audiences holds a non-string");
        result.audiences.emplace_back(a.as_string());
      }
    } else if (key == "user") {
      if (!value.is_object()) return malformed("status.user is not an object");
      for (const auto& [ukey, uvalue] : value.as_object()) {
        if (ukey != "username" && ukey != "uid") continue;
        if (uvalue.is_null()) continue;
        if (!uvalue.is_string()) return malformed("status.user fields must be strings");
        (ukey == "username" ? result.username : result.uid) = std::string(uvalue.as_string());
      }
    }
  }
  return result;
}

struct ResolveState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  std::vector<tcp::endpoint> endpoints;
};

// getaddrinfo on a detached thread: the caller waits at most until the deadline and leaves a
// late answer to the thread, which owns its share of the state.
absl::StatusOr<std::vector<tcp::endpoint>> Resolve(const Target& t, Clock::time_point deadline,
                                                   bool* timed_out) {
  if (t.is_ip) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(t.host, ec);
    if (ec) return absl::InvalidArgumentError("kubernetes_host: bad IP address");
    return std::vector<tcp::endpoint>{tcp::endpoint(address, t.port)};
  }
  auto state = std::make_shared<ResolveState>();
  std::thread([state, host = t.host, port = t.port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
    std::vector<tcp::endpoint> endpoints;
    for (addrinfo* ai = list; rc == 0 && ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        endpoints.emplace_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)), port);
      } else if (ai->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
        asio::ip::address_v6::bytes_type bytes;
        std::copy(std::begin(sin6->sin6_addr.s6_addr), std::end(sin6->sin6_addr.s6_addr),
                  bytes.begin());
        endpoints.emplace_back(asio::ip::address_v6(bytes, sin6->sin6_scope_id), port);
      }
    }
    if (list != nullptr) freeaddrinfo(list);
    std::lock_guard<std::mutex> lock(state->mu);
    state->rc = rc;
    state->endpoints = std::move(endpoints);
    state->done = true;
    state->cv.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(state->mu);
  if (!state->cv.wait_until(lock, deadline, [&] { return state->done; })) {
    *timed_out = true;
    return absl::UnavailableError("resolve");
  }
  if (state->rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve: ", gai_strerror(state->rc)));
  }
  if (state->endpoints.empty()) return absl::UnavailableError("resolve: no addresses");
  return std::move(state->endpoints);
}

// One TokenReview exchange on a private io_context.
class Exchange {
 public:
  Exchange(ssl::context& ctx, Clock::time_point deadline)
      : ioc_(1), stream_(ioc_, ctx), deadline_(deadline) {}

  ~Exchange() {
    boost::system::error_code ignored;
    stream_.next_layer().close(ignored);
  }

  // Starts an async operation with a completion handler and runs it to completion or to the
  // deadline; on the deadline the socket is closed and timed_out is returned.
  template <typename Start>
  boost::system::error_code Await(Start&& start) {
    std::optional<boost::system::error_code> result;
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run_until(deadline_);
    if (!result) {
      boost::system::error_code ignored;
      stream_.next_layer().cancel(ignored);
      stream_.next_layer().close(ignored);
      ioc_.restart();
      ioc_.run();  // lets the aborted operation complete
      return asio::error::timed_out;
    }
    return *result;
  }

  beast::ssl_stream<tcp::socket>& stream() { return stream_; }

 private:
  asio::io_context ioc_;
  beast::ssl_stream<tcp::socket> stream_;
  Clock::time_point deadline_;
};

bool HasDnsSan(X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  bool found = false;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    if (sk_GENERAL_NAME_value(names, i)->type == GEN_DNS) found = true;
  }
  GENERAL_NAMES_free(names);
  return found;
}

std::string TlsReason(const boost::system::error_code& ec, SSL* ssl) {
  std::string reason = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    absl::StrAppend(&reason, ": ", X509_verify_cert_error_string(verify));
  }
  return reason;
}

absl::StatusOr<TokenReviewResult> Review(const TokenReviewRequest& req, const Target& target) {
  // Clamped so that an absl::InfiniteDuration cannot overflow the clock arithmetic.
  const Clock::time_point deadline =
      Clock::now() + absl::ToChronoNanoseconds(std::min(req.timeout, absl::Hours(24)));
  const std::string where = absl::StrCat("TokenReview request to ", target.Where());
  auto unavailable = [&](std::string_view stage, std::string_view reason) {
    return absl::UnavailableError(
        absl::StrCat(where, " failed: ", Av(stage), reason.empty() ? "" : ": ", Av(reason)));
  };
  auto timed_out = [&](std::string_view stage) {
    return absl::UnavailableError(absl::StrCat(
        where, " timed out after ", absl::FormatDuration(req.timeout), " during ", Av(stage)));
  };

  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  if (req.ca_pem.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) return unavailable("loading the default CA certificates", ec.message());
  } else {
    ctx.add_certificate_authority(asio::buffer(req.ca_pem), ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubernetes_ca_cert: no usable PEM certificate (", ec.message(), ")"));
    }
  }
  ctx.set_verify_mode(ssl::verify_peer);

  bool resolve_timed_out = false;
  auto endpoints = Resolve(target, deadline, &resolve_timed_out);
  if (resolve_timed_out) return timed_out("resolve");
  if (!endpoints.ok()) {
    if (absl::IsUnavailable(endpoints.status())) {
      return unavailable(Sv(endpoints.status().message()), "");
    }
    return endpoints.status();
  }

  Exchange x(ctx, deadline);
  SSL* ssl = x.stream().native_handle();
  // Host name verification: X509_check_ip_asc against the IP SANs for an IP literal,
  // X509_check_host for a name. X509_check_host falls back to the subject CN when the
  // certificate has no DNS SAN; Go (and so Vault) never looks at the CN, so a name needs a DNS
  // SAN here too. Setting the X.509 error makes the handshake failure readable.
  x.stream().set_verify_callback(
      [check = ssl::host_name_verification(target.host), is_ip = target.is_ip](
          bool preverified, ssl::verify_context& vctx) {
        X509_STORE_CTX* store = vctx.native_handle();
        bool ok = check(preverified, vctx);
        if (ok && !is_ip && X509_STORE_CTX_get_error_depth(store) == 0 &&
            !HasDnsSan(X509_STORE_CTX_get_current_cert(store))) {
          ok = false;
        }
        if (preverified && !ok) {
          X509_STORE_CTX_set_error(
              store, is_ip ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
        }
        return ok;
      },
      ec);
  if (ec) return unavailable("TLS set-up", ec.message());
  if (!target.is_ip && SSL_set_tlsext_host_name(ssl, target.host.c_str()) != 1) {
    return unavailable("TLS set-up", "cannot set SNI");
  }

  ec = x.Await([&](auto handler) {
    asio::async_connect(x.stream().next_layer(), *endpoints, std::move(handler));
  });
  if (ec == asio::error::timed_out) return timed_out("connect");
  if (ec) return unavailable("connect", ec.message());

  ec = x.Await([&](auto handler) {
    x.stream().async_handshake(ssl::stream_base::client, std::move(handler));
  });
  if (ec == asio::error::timed_out) return timed_out("TLS handshake");
  if (ec) return unavailable("TLS handshake", TlsReason(ec, ssl));

  http::request<http::string_body> request{http::verb::post, target.target, 11};
  request.set(http::field::host, target.authority);
  request.set(http::field::user_agent, "strongroom");
  request.set(http::field::authorization, absl::StrCat("Bearer ", req.bearer));
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  request.body() = TokenReviewBody(req.token, req.audiences);
  request.prepare_payload();
  ec = x.Await([&](auto handler) { http::async_write(x.stream(), request, std::move(handler)); });
  if (ec == asio::error::timed_out) return timed_out("write");
  if (ec) return unavailable("write", ec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(kMaxTokenReviewResponseBytes);
  ec = x.Await(
      [&](auto handler) { http::async_read(x.stream(), buffer, parser, std::move(handler)); });
  if (ec == asio::error::timed_out) return timed_out("read");
  if (ec == http::error::body_limit) {
    return unavailable("read", "response body larger than 1 MiB");
  }
  if (ec) return unavailable("read", ec.message());

  const auto& response = parser.get();
  return ParseReview(response.result_int(), std::string_view(response.reason()), response.body(),
                     req);
}

}  // namespace

std::string TokenReviewBody(const std::string& token, const std::vector<std::string>& audiences) {
  std::string out = R"({"metadata":{"creationTimestamp":null},"spec":{)";
  if (!token.empty()) {
    out.append(R"("token":)");
    AppendGoJsonString(out, token);
  }
  if (!audiences.empty()) {
    if (!token.empty()) out.push_back(',');
    out.append(R"("audiences":[)");
    for (size_t i = 0; i < audiences.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendGoJsonString(out, audiences[i]);
    }
    out.push_back(']');
  }
  out.append(R"(},"status":{"user":{}}})");
  return out;
}

absl::StatusOr<TokenReviewResult> ReviewToken(const TokenReviewRequest& req) {
  auto target = ParseHost(req.host);
  if (!target.ok()) return target.status();
  if (req.bearer.empty() || !IsPrintableAscii(req.bearer)) {
    return absl::InvalidArgumentError("TokenReview bearer token is empty or not printable ASCII");
  }
  if (req.token.empty()) return absl::InvalidArgumentError("no token to review");
  if (req.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("TokenReview timeout must be positive");
  }
  // Asio and Beast report errors through error_code here; what can still throw (allocation,
  // SSL_CTX_new failing in ssl::context's constructor, the resolver thread) stops at this
  // boundary.
  try {
    return Review(req, *target);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("TokenReview request to ", target->Where(), " failed: ", e.what()));
  }
}

}  // namespace strongroom::engines
