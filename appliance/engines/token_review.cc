// The Kubernetes TokenReview client: the request body as Vault marshals it, one HTTPS exchange
// through client/http (which bounds it with one deadline), and the answer read as client-go does.
#include "appliance/engines/token_review.h"

#include <cstdint>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appliance/core/json.h"
#include "base/strings.h"
#include "client/http.h"

namespace strongroom::engines {
namespace {

namespace json = boost::json;

constexpr std::string_view kTokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";
// Vault's message for a 401 from the API server (path_login.go / token_review.go).
constexpr std::string_view kUnauthorizedMessage =
    "lookup failed: service account unauthorized; this could mean it has been deleted or "
    "recreated with a new token";
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr size_t kMaxServerMessageBytes = 1024;

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

absl::StatusOr<TokenReviewResult> Review(const TokenReviewRequest& req, const http::Url& target) {
  http::TlsOptions tls;
  tls.ca_pem = req.ca_pem;
  http::Request request;
  request.method = "POST";
  request.target = std::string(kTokenReviewPath);
  request.headers = {{"Authorization", absl::StrCat("Bearer ", req.bearer)},
                     {"Content-Type", "application/json"},
                     {"Accept", "application/json"}};
  request.body = TokenReviewBody(req.token, req.audiences);
  http::Limits limits;
  limits.max_header_bytes = kMaxResponseHeaderBytes;
  limits.max_body_bytes = kMaxTokenReviewResponseBytes;
  auto response = http::Fetch(target, tls, request, req.timeout, limits, "TokenReview request");
  if (!response.ok()) {
    if (absl::IsInvalidArgument(response.status()) && !req.ca_pem.empty() &&
        absl::StartsWith(response.status().message(), "no usable PEM")) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubernetes_ca_cert: ", response.status().message()));
    }
    return response.status();
  }
  return ParseReview(response->status, response->reason, response->body, req);
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
  auto target = http::ParseUrl(req.host, "kubernetes_host", /*allow_http=*/false);
  if (!target.ok()) return target.status();
  if (req.bearer.empty() || !http::IsPrintableAscii(req.bearer)) {
    return absl::InvalidArgumentError("TokenReview bearer token is empty or not printable ASCII");
  }
  if (req.token.empty()) return absl::InvalidArgumentError("no token to review");
  if (req.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("TokenReview timeout must be positive");
  }
  return Review(req, *target);
}

}  // namespace strongroom::engines
