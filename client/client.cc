#include "client/client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/strings.h"

namespace strongroom::client {
namespace {

constexpr std::string_view kHttpStatusPayload = "type.strongroom/http-status";

absl::StatusCode CodeForHttp(unsigned status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
      return absl::StatusCode::kUnimplemented;
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return status >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kUnknown;
  }
}

// A server's text as it may go into a log line: control characters and backslashes escaped
// (no forged lines, no terminal sequences), at most `max` bytes.
std::string Printable(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) {
      out.append("...");
      break;
    }
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(b, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Vault's api package's ResponseError text, with the server's part made printable and bounded
// (each error 1 KiB, all of them 4 KiB: a hostile server's answer ends up in logs).
absl::Status ApiError(std::string_view method, std::string_view url, const http::Response& r) {
  std::string message = absl::StrCat("Error making API request.\n\nURL: ", Av(method), " ", Av(url),
                                     "\nCode: ", r.status, ".");
  auto parsed = core::ParseObject(r.body);
  std::vector<std::string> errors;
  if (parsed.ok()) {
    if (auto it = parsed->find("errors"); it != parsed->end() && it->value().is_array()) {
      for (const json::value& e : it->value().as_array()) {
        if (e.is_string()) errors.emplace_back(e.as_string());
      }
    }
  }
  constexpr size_t kMaxErrorBytes = 1024, kMaxErrorsBytes = 4096;
  if (!errors.empty()) {
    absl::StrAppend(&message, " Errors:\n");
    size_t total = 0;
    for (const std::string& e : errors) {
      if (total >= kMaxErrorsBytes) {
        absl::StrAppend(&message, "\n* ...");
        break;
      }
      std::string line = Printable(e, kMaxErrorBytes);
      total += line.size();
      absl::StrAppend(&message, "\n* ", line);
    }
  } else if (!r.body.empty()) {
    // Not Vault's error shape (a proxy's page): a bounded, printable excerpt.
    absl::StrAppend(&message, " Raw Message:\n\n", Printable(r.body, 512));
  }
  absl::Status status(CodeForHttp(r.status), message);
  status.SetPayload(Av(kHttpStatusPayload), absl::Cord(absl::StrCat(r.status)));
  return status;
}

int64_t IntField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64())
    return static_cast<int64_t>(std::min<uint64_t>(it->value().as_uint64(), INT64_MAX));
  if (it->value().is_double()) {
    // A hostile server's 1e300 or NaN: clamped, never an out-of-range cast.
    const double d = it->value().as_double();
    if (!(d > 0)) return 0;
    return d >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(d);
  }
  return 0;
}

std::string StringField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

bool BoolField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_bool() && it->value().as_bool();
}

std::vector<std::string> StringsField(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) return out;
  for (const json::value& v : it->value().as_array()) {
    if (v.is_string()) out.emplace_back(v.as_string());
  }
  return out;
}

// A request path: no control characters and no "." or ".." segment (the rest is percent-encoded
// by EncodePath, so nothing in a path can reach another endpoint or add a query).
absl::Status CheckPath(std::string_view path) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("invalid request path \"", Av(path), "\""));
  };
  if (path.empty() || path.front() == '/') return bad();
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad();
  }
  for (absl::string_view seg : absl::StrSplit(Av(path), '/')) {
    if (seg == "." || seg == "..") return bad();
  }
  return absl::OkStatus();
}

// The path as it goes on the wire: every byte but unreserved ones and "/" percent-encoded (the
// server decodes them; "my key" and "a?b" are names, never a query).
std::string EncodePath(std::string_view path) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : path) {
    const auto b = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(b) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

// "'" inside a single-quoted shell word.
std::string ShellQuoted(std::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(Av(s), {{"'", "'\"'\"'"}}), "'");
}

// A word the shell reads as itself: as is when it holds only characters no shell treats
// specially, else single-quoted.
std::string ShellWord(std::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("-_./:%=?,+@~").find(c) == std::string_view::npos) {
      return ShellQuoted(s);
    }
  }
  return std::string(s);
}

std::string CurlString(const Config& config, const http::Request& req, bool has_token) {
  std::string out = "curl ";
  if (config.tls.skip_verify) out.append("--insecure ");
  if (req.method != "GET") absl::StrAppend(&out, "-X ", req.method, " ");
  if (!config.tls.ca_file.empty())
    absl::StrAppend(&out, "--cacert ", ShellQuoted(config.tls.ca_file), " ");
  if (!config.tls.ca_path.empty())
    absl::StrAppend(&out, "--capath ", ShellQuoted(config.tls.ca_path), " ");
  if (!config.tls.client_cert_file.empty()) {
    absl::StrAppend(&out, "--cert ", ShellQuoted(config.tls.client_cert_file), " --key ",
                    ShellQuoted(config.tls.client_key_file), " ");
  }
  for (const auto& [name, value] : req.headers) {
    if (name == "X-Vault-Token") continue;
    const std::string header = absl::StrCat(name, ": ", value);
    if (ShellWord(value) == value) {
      absl::StrAppend(&out, "-H \"", header, "\" ");
    } else {
      absl::StrAppend(&out, "-H ", ShellQuoted(header), " ");
    }
  }
  if (has_token) out.append("-H \"X-Vault-Token: $(strongroom print token)\" ");
  bool binary = false;
  for (const auto& [name, value] : req.headers) {
    binary = binary || (name == "Content-Type" && value == "application/octet-stream");
  }
  if (binary) {
    out.append("--data-binary @- ");  // bytes (a snapshot): fed on curl's stdin
  } else if (!req.body.empty()) {
    absl::StrAppend(&out, "-d ", ShellQuoted(req.body), " ");
  }
  absl::StrAppend(&out, ShellWord(absl::StrCat(config.address, req.target)));
  return out;
}

constexpr std::string_view kCurlPrinted = "the request was printed as a curl command, not sent";

}  // namespace

int HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(Av(kHttpStatusPayload));
  int code = 0;
  if (!payload || !absl::SimpleAtoi(payload->Flatten(), &code)) return 0;
  return code;
}

absl::Duration RenewAfter(int64_t lease_seconds) {
  return std::max(absl::Seconds(1), absl::Seconds(lease_seconds) * 2 / 3);
}

absl::StatusOr<Secret> ParseSecret(std::string_view body) {
  Secret s;
  if (body.empty()) return s;
  auto parsed = core::ParseObject(body);
  if (!parsed.ok()) return absl::InternalError("the server's answer is not a JSON object");
  s.raw = std::move(*parsed);
  s.request_id = StringField(s.raw, "request_id");
  s.lease_id = StringField(s.raw, "lease_id");
  s.lease_duration = IntField(s.raw, "lease_duration");
  s.renewable = BoolField(s.raw, "renewable");
  if (auto it = s.raw.find("data"); it != s.raw.end()) s.data = it->value();
  s.warnings = StringsField(s.raw, "warnings");
  if (auto it = s.raw.find("auth"); it != s.raw.end() && it->value().is_object()) {
    const json::object& a = it->value().as_object();
    Auth auth;
    auth.client_token = StringField(a, "client_token");
    auth.accessor = StringField(a, "accessor");
    auth.policies = StringsField(a, "policies");
    auth.lease_duration = IntField(a, "lease_duration");
    auth.renewable = BoolField(a, "renewable");
    s.auth = std::move(auth);
  }
  if (auto it = s.raw.find("wrap_info"); it != s.raw.end() && it->value().is_object()) {
    const json::object& w = it->value().as_object();
    WrapInfo info;
    info.token = StringField(w, "token");
    info.accessor = StringField(w, "accessor");
    info.ttl = IntField(w, "ttl");
    info.creation_time = StringField(w, "creation_time");
    info.creation_path = StringField(w, "creation_path");
    info.wrapped_accessor = StringField(w, "wrapped_accessor");
    s.wrap_info = std::move(info);
  }
  return s;
}

std::string WrapInfoJson(const WrapInfo& w) {
  json::object o;
  o["token"] = w.token;
  o["accessor"] = w.accessor;
  o["ttl"] = w.ttl;
  o["creation_time"] = w.creation_time;
  o["creation_path"] = w.creation_path;
  o["wrapped_accessor"] = w.wrapped_accessor;
  // Go's encoder escapes <, > and & in strings; a creation path could hold "&".
  std::string out = absl::StrReplaceAll(core::Serialize(o),
                                        {{"<", "\\u003c"}, {">", "\\u003e"}, {"&", "\\u0026"}});
  out.push_back('\n');
  return out;
}

absl::StatusOr<Client> Client::Create(Config config) {
  auto url = http::ParseUrl(config.address, "address", /*allow_http=*/true);
  if (!url.ok()) return url.status();
  return Client(std::move(config), std::move(*url));
}

absl::Status Client::CurlPrinted() { return absl::CancelledError(Av(kCurlPrinted)); }
bool Client::IsCurlPrinted(const absl::Status& s) {
  return s.code() == absl::StatusCode::kCancelled && Sv(s.message()) == kCurlPrinted;
}

absl::StatusOr<http::Request> Client::Prepare(std::string_view method, std::string_view path,
                                              std::string_view query,
                                              const RequestOptions& options) const {
  if (absl::Status s = CheckPath(path); !s.ok()) return s;
  for (char c : query) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      return absl::InvalidArgumentError("invalid query string");
    }
  }
  http::Request req;
  req.method = std::string(method);
  req.target = absl::StrCat("/v1/", EncodePath(path), query.empty() ? "" : "?", Av(query));
  if (!token_.empty()) req.headers.emplace_back("X-Vault-Token", token_);
  req.headers.emplace_back("X-Vault-Request", "true");
  if (!config_.namespace_.empty())
    req.headers.emplace_back("X-Vault-Namespace", config_.namespace_);
  // Vault's api: the request's own TTL, else the client's, else 5m for a write to
  // sys/wrapping/wrap (which the server refuses to answer unwrapped).
  std::string wrap_ttl = options.wrap_ttl.value_or(wrap_ttl_);
  if (!options.wrap_ttl && wrap_ttl.empty() && (method == "PUT" || method == "POST") &&
      path == "sys/wrapping/wrap") {
    wrap_ttl = std::string(kDefaultWrappingTtl);
  }
  if (!wrap_ttl.empty()) {
    // A duration ("5m", "1h30m", "300"): nothing else goes into the header.
    if (wrap_ttl.size() > 32 || !std::all_of(wrap_ttl.begin(), wrap_ttl.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.';
        })) {
      return absl::InvalidArgumentError(absl::StrCat("invalid wrap TTL \"", Av(wrap_ttl), "\""));
    }
    req.headers.emplace_back("X-Vault-Wrap-TTL", std::move(wrap_ttl));
  }
  return req;
}

absl::StatusOr<http::Response> Client::Send(const http::Request& req) const {
  if (curl_sink_ != nullptr) {
    *curl_sink_ = CurlString(config_, req, !token_.empty());
    return CurlPrinted();
  }
  http::Limits limits;
  limits.max_body_bytes = config_.max_response_bytes;
  auto response = http::Fetch(url_, config_.tls, req, config_.timeout, limits, "request");
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status > 299) {
    // The URL as Vault prints it: the address, the path and the query.
    return ApiError(req.method, absl::StrCat(config_.address, req.target), *response);
  }
  return response;
}

absl::StatusOr<Secret> Client::Request(std::string_view method, std::string_view path,
                                       const json::object* body, std::string_view query,
                                       const RequestOptions& options) {
  auto req = Prepare(method, path, query, options);
  if (!req.ok()) return req.status();
  if (body != nullptr) {
    req->headers.emplace_back(
        "Content-Type", method == "PATCH" ? "application/merge-patch+json" : "application/json");
    req->body = core::Serialize(*body);
  }
  auto response = Send(*req);
  if (!response.ok()) return response.status();
  if (response->status == 204) return Secret{};
  return ParseSecret(response->body);
}

absl::StatusOr<std::string> Client::RequestRaw(std::string_view method, std::string_view path,
                                               const std::string* body, std::string_view query) {
  auto req = Prepare(method, path, query);
  if (!req.ok()) return req.status();
  if (body != nullptr) {
    req->headers.emplace_back("Content-Type", "application/octet-stream");
    req->body = *body;
  }
  auto response = Send(*req);
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

absl::StatusOr<Secret> Client::LoginRequest(std::string_view mount_path, const json::object& body,
                                            const RequestOptions& options) {
  std::string_view mount = mount_path;
  while (!mount.empty() && mount.back() == '/') mount.remove_suffix(1);
  if (mount.empty()) return absl::InvalidArgumentError("empty auth mount path");
  // "auth/kubernetes" and "kubernetes" both name the mount (Vault Agent's mount_path is the
  // former).
  std::string path =
      absl::StartsWith(Av(mount), "auth/") ? std::string(mount) : absl::StrCat("auth/", Av(mount));
  return Request("PUT", absl::StrCat(path, "/login"), &body, "", options);
}

absl::StatusOr<Auth> Client::Login(std::string_view mount_path, const json::object& body) {
  // Never wrapped: the caller wants the token itself.
  RequestOptions options;
  options.wrap_ttl = "";
  auto secret = LoginRequest(mount_path, body, options);
  if (!secret.ok()) return secret.status();
  if (!secret->auth || secret->auth->client_token.empty()) {
    return absl::InternalError("the login answer holds no token");
  }
  return std::move(*secret->auth);
}

absl::StatusOr<Auth> Client::LoginKubernetes(std::string_view mount_path, std::string_view role,
                                             std::string_view jwt) {
  json::object body;
  body["role"] = role;
  body["jwt"] = jwt;
  return Login(mount_path, body);
}

absl::StatusOr<Auth> Client::LoginAppRole(std::string_view mount_path, std::string_view role_id,
                                          std::string_view secret_id) {
  json::object body;
  body["role_id"] = role_id;
  if (!secret_id.empty()) body["secret_id"] = secret_id;
  return Login(mount_path, body);
}

absl::StatusOr<Secret> Client::Unwrap(std::string_view wrapping_token) {
  const std::string token(absl::StripAsciiWhitespace(Av(wrapping_token)));
  json::object body;
  const std::string own = token_;
  if (!token.empty()) {
    if (token_.empty()) {
      token_ = token;  // for this request only
    } else if (token != token_) {
      body["token"] = token;
    }
  }
  auto secret = Request("PUT", "sys/wrapping/unwrap", &body);
  token_ = own;
  return secret;
}

absl::StatusOr<WrapInfo> Client::Wrap(const json::object& data, std::string_view ttl) {
  if (ttl.empty()) return absl::InvalidArgumentError("no wrapping TTL");
  RequestOptions options;
  options.wrap_ttl = std::string(ttl);
  auto secret = Request("PUT", "sys/wrapping/wrap", &data, "", options);
  if (!secret.ok()) return secret.status();
  if (!secret->wrap_info || secret->wrap_info->token.empty()) {
    return absl::InternalError("the wrapping answer holds no wrap_info");
  }
  return std::move(*secret->wrap_info);
}

absl::StatusOr<Secret> Client::WrapLookup(std::string_view wrapping_token) {
  json::object body;
  body["token"] = Sv(absl::StripAsciiWhitespace(Av(wrapping_token)));
  RequestOptions options;
  options.wrap_ttl = "";
  return Request("PUT", "sys/wrapping/lookup", &body, "", options);
}

absl::StatusOr<Auth> Client::RenewSelf(int64_t increment_seconds) {
  json::object body;
  if (increment_seconds > 0) body["increment"] = increment_seconds;
  auto secret = Request("PUT", "auth/token/renew-self", &body);
  if (!secret.ok()) return secret.status();
  if (!secret->auth) return absl::InternalError("the renewal answer holds no auth");
  return std::move(*secret->auth);
}

}  // namespace strongroom::client
