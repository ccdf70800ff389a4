// The one client-side translation unit that compiles Boost.Beast/Asio for HTTP(S) exchanges
// (the broker's TokenReview client links it too). Every step is an async operation on a private
// io_context run up to one deadline; when the deadline passes the socket is closed, which
// completes the pending operation with an error.
#include "client/http.h"

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
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string SizeText(uint64_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return absl::StrCat(n >> 20, " MiB");
  if (n >= 1024 && n % 1024 == 0) return absl::StrCat(n >> 10, " KiB");
  return absl::StrCat(n, " bytes");
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
absl::StatusOr<std::vector<tcp::endpoint>> Resolve(const Url& url, Clock::time_point deadline,
                                                   bool* timed_out) {
  if (url.is_ip) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(url.host, ec);
    if (ec) return absl::InvalidArgumentError("bad IP address");
    return std::vector<tcp::endpoint>{tcp::endpoint(address, url.port)};
  }
  auto state = std::make_shared<ResolveState>();
  std::thread([state, host = url.host, port = url.port] {
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

// One exchange on a private io_context.
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

// Loads what TlsOptions names into ctx. InvalidArgument for unusable files or PEM.
absl::Status ConfigureTls(ssl::context& ctx, const TlsOptions& tls) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  if (!tls.client_cert_file.empty() || !tls.client_key_file.empty()) {
    if (tls.client_cert_file.empty() || tls.client_key_file.empty()) {
      return absl::InvalidArgumentError("client_cert and client_key must be given together");
    }
    ctx.use_certificate_chain_file(tls.client_cert_file, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("client_cert: ", ec.message()));
    ctx.use_private_key_file(tls.client_key_file, ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("client_key: ", ec.message()));
  }
  if (tls.skip_verify) {
    ctx.set_verify_mode(ssl::verify_none);
    return absl::OkStatus();
  }
  if (!tls.ca_pem.empty()) {
    ctx.add_certificate_authority(asio::buffer(tls.ca_pem), ec);
    if (ec)
      return absl::InvalidArgumentError(
          absl::StrCat("no usable PEM certificate (", ec.message(), ")"));
  } else if (!tls.ca_file.empty() || !tls.ca_path.empty()) {
    if (!tls.ca_file.empty()) {
      ctx.load_verify_file(tls.ca_file, ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("ca_cert: ", ec.message()));
    }
    if (!tls.ca_path.empty()) {
      ctx.add_verify_path(tls.ca_path, ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("ca_path: ", ec.message()));
    }
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("loading the default CA certificates: ", ec.message()));
    }
  }
  ctx.set_verify_mode(ssl::verify_peer);
  return absl::OkStatus();
}

absl::StatusOr<Response> Run(const Url& url, const TlsOptions& tls, const Request& request,
                             absl::Duration timeout, const Limits& limits, std::string_view label) {
  // Clamped so that an absl::InfiniteDuration cannot overflow the clock arithmetic.
  const Clock::time_point deadline =
      Clock::now() + absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24)));
  const std::string where = absl::StrCat(Av(label), " to ", url.Where());
  auto unavailable = [&](std::string_view stage, std::string_view reason) {
    return absl::UnavailableError(
        absl::StrCat(where, " failed: ", Av(stage), reason.empty() ? "" : ": ", Av(reason)));
  };
  auto timed_out = [&](std::string_view stage) {
    return absl::UnavailableError(absl::StrCat(
        where, " timed out after ", absl::FormatDuration(timeout), " during ", Av(stage)));
  };

  ssl::context ctx(ssl::context::tls_client);
  if (url.tls) {
    if (absl::Status s = ConfigureTls(ctx, tls); !s.ok()) {
      if (absl::IsUnavailable(s)) return unavailable(Sv(s.message()), "");
      return s;
    }
  }

  bool resolve_timed_out = false;
  auto endpoints = Resolve(url, deadline, &resolve_timed_out);
  if (resolve_timed_out) return timed_out("resolve");
  if (!endpoints.ok()) {
    if (absl::IsUnavailable(endpoints.status())) {
      return unavailable(Sv(endpoints.status().message()), "");
    }
    return endpoints.status();
  }

  Exchange x(ctx, deadline);
  SSL* ssl = x.stream().native_handle();
  boost::system::error_code ec;
  const std::string& name = tls.server_name.empty() ? url.host : tls.server_name;
  const bool name_is_ip = tls.server_name.empty() ? url.is_ip : false;
  if (url.tls && !tls.skip_verify) {
    // Host name verification: X509_check_ip_asc against the IP SANs for an IP literal,
    // X509_check_host for a name. X509_check_host falls back to the subject CN when the
    // certificate has no DNS SAN; Go never looks at the CN, so a name needs a DNS SAN here too.
    // Setting the X.509 error makes the handshake failure readable.
    x.stream().set_verify_callback(
        [check = ssl::host_name_verification(name), is_ip = name_is_ip](bool preverified,
                                                                        ssl::verify_context& vctx) {
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
  }
  if (url.tls && !name_is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    return unavailable("TLS set-up", "cannot set SNI");
  }

  ec = x.Await([&](auto handler) {
    asio::async_connect(x.stream().next_layer(), *endpoints, std::move(handler));
  });
  if (ec == asio::error::timed_out) return timed_out("connect");
  if (ec) return unavailable("connect", ec.message());

  if (url.tls) {
    ec = x.Await([&](auto handler) {
      x.stream().async_handshake(ssl::stream_base::client, std::move(handler));
    });
    if (ec == asio::error::timed_out) return timed_out("TLS handshake");
    if (ec) return unavailable("TLS handshake", TlsReason(ec, ssl));
  }

  const bhttp::verb verb = bhttp::string_to_verb(request.method);
  if (verb == bhttp::verb::unknown) return absl::InvalidArgumentError("unknown HTTP method");
  bhttp::request<bhttp::string_body> req{verb, absl::StrCat(url.prefix, request.target), 11};
  req.set(bhttp::field::host, url.authority);
  req.set(bhttp::field::user_agent, "strongroom");
  for (const auto& [key, value] : request.headers) req.set(key, value);
  req.body() = request.body;
  req.prepare_payload();
  // Writes and reads on the TLS stream or, for http://, on its TCP socket.
  auto exchange = [&](auto& stream) -> absl::StatusOr<Response> {
    ec = x.Await([&](auto handler) { bhttp::async_write(stream, req, std::move(handler)); });
    if (ec == asio::error::timed_out) return timed_out("write");
    if (ec) return unavailable("write", ec.message());
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(limits.max_header_bytes);
    parser.body_limit(limits.max_body_bytes);
    ec = x.Await(
        [&](auto handler) { bhttp::async_read(stream, buffer, parser, std::move(handler)); });
    if (ec == asio::error::timed_out) return timed_out("read");
    if (ec == bhttp::error::body_limit) {
      return unavailable(
          "read", absl::StrCat("response body larger than ", SizeText(limits.max_body_bytes)));
    }
    if (ec) return unavailable("read", ec.message());
    auto& message = parser.get();
    Response out;
    out.status = message.result_int();
    out.reason = std::string(message.reason());
    for (const auto& field : message) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(message.body());
    return out;
  };
  if (url.tls) return exchange(x.stream());
  return exchange(x.stream().next_layer());
}

}  // namespace

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c <= 0x20 || c == 0x7f) return false;  // also refuses space and bytes >= 0x80
  }
  return true;
}

std::string Url::Where() const {
  return is_ip && host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                      : absl::StrCat(host, ":", port);
}

absl::StatusOr<Url> ParseUrl(std::string_view url, std::string_view what, bool allow_http) {
  constexpr std::string_view kHttps = "https://", kHttp = "http://";
  const std::string w(what);
  Url t;
  std::string_view rest;
  if (url.size() >= kHttp.size() && absl::EqualsIgnoreCase(Av(url.substr(0, 7)), Av(kHttp))) {
    if (!allow_http) return absl::InvalidArgumentError(w + " must be an https:// URL, not http://");
    t.tls = false;
    t.port = 80;
    rest = url.substr(kHttp.size());
  } else if (url.size() >= kHttps.size() &&
             absl::EqualsIgnoreCase(Av(url.substr(0, 8)), Av(kHttps))) {
    rest = url.substr(kHttps.size());
  } else {
    return absl::InvalidArgumentError(
        w + (allow_http ? " must be an http:// or https:// URL" : " must be an https:// URL"));
  }
  if (!IsPrintableAscii(rest))
    return absl::InvalidArgumentError(w + " contains invalid characters");
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return absl::InvalidArgumentError(w + " must not have a query or fragment");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return absl::InvalidArgumentError(w + " must not contain user information");
  }
  t.authority = std::string(authority);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(w + ": unterminated IPv6 address");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return absl::InvalidArgumentError(w + ": bad port");
      port = after.substr(1);
    }
    boost::system::error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec) return absl::InvalidArgumentError(w + ": bad IPv6 address");
    t.is_ip = true;
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (char c : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return absl::InvalidArgumentError(w + ": bad host name");
      }
    }
    boost::system::error_code ec;
    asio::ip::make_address_v4(std::string(host), ec);
    t.is_ip = !ec;
  }
  if (host.empty()) return absl::InvalidArgumentError(w + ": no host");
  t.host = std::string(host);
  if (!port.empty()) {
    uint32_t p = 0;
    if (port.size() > 5 || !absl::SimpleAtoi(Av(port), &p) || p == 0 || p > 65535 ||
        !absl::ascii_isdigit(static_cast<unsigned char>(port.front()))) {
      return absl::InvalidArgumentError(w + ": bad port");
    }
    t.port = static_cast<uint16_t>(p);
  }
  // Vault trims one trailing slash before appending an API path.
  if (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  t.prefix = std::string(prefix);
  return t;
}

absl::StatusOr<Response> Fetch(const Url& url, const TlsOptions& tls, const Request& request,
                               absl::Duration timeout, const Limits& limits,
                               std::string_view label) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  for (const auto& [key, value] : request.headers) {
    // No header splitting through a value read from a file or the environment (a token).
    if (key.empty() || key.find_first_of(std::string_view("\r\n\0: ", 5)) != std::string::npos ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError("HTTP header with a control character");
    }
  }
  // Asio and Beast report errors through error_code here; what can still throw (allocation,
  // SSL_CTX_new failing in ssl::context's constructor, the resolver thread) stops at this
  // boundary.
  try {
    return Run(url, tls, request, timeout, limits, label);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat(Av(label), " to ", url.Where(), " failed: ", e.what()));
  }
}

}  // namespace strongroom::http
