#include "appliance/worker/codec.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "appliance/core/json.h"
#include "base/strings.h"

namespace strongroom::worker {
namespace {

namespace json = boost::json;

bool ParseBoolQuery(std::string_view v, bool* out) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") {
    *out = false;
    return true;
  }
  return false;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; `plus_is_space` for query components.
bool UrlDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = HexVal(in[i + 1]), l = HexVal(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out->push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

HttpOut ErrorOut(unsigned status, const std::vector<std::string>& errors) {
  json::object o;
  json::array a;
  for (const auto& e : errors) a.emplace_back(e);
  o["errors"] = std::move(a);
  return HttpOut{status, json::serialize(o) + "\n", false, "", "", ""};
}

unsigned JsonLimitStatus(core::JsonLimit limit) {
  return limit == core::JsonLimit::kMemory || limit == core::JsonLimit::kStrings ? 400 : 500;
}

Decoded DecodeRequest(const HttpIn& in, const core::JsonLimits& limits) {
  ipc::Request req;
  std::string_view target = in.target;
  std::string_view raw_path = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    raw_path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (!raw_path.starts_with("/v1/")) return ErrorOut(404, {});
  std::string path;
  if (!UrlDecode(raw_path.substr(4), false, &path) || !ValidUtf8(path)) {
    return ErrorOut(400, {"invalid request path"});
  }

  // Query parameters become request data for read, list and delete (single value -> string).
  json::object query_data;
  bool list = false;
  for (absl::string_view kv_a : absl::StrSplit(Av(query), '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(kv_a, absl::MaxSplits('=', 1));
    std::string k, v;
    if (!UrlDecode(Sv(p.first), true, &k) || !UrlDecode(Sv(p.second), true, &v) || !ValidUtf8(k) ||
        !ValidUtf8(v)) {
      return ErrorOut(400, {"invalid query string"});
    }
    if (k == "list") {
      if (!ParseBoolQuery(v, &list)) return ErrorOut(400, {});
      continue;
    }
    if (auto it = query_data.find(k); it != query_data.end()) {
      if (!it->value().is_array()) {
        json::array a;
        a.push_back(it->value());
        it->value() = std::move(a);
      }
      it->value().as_array().emplace_back(v);
    } else {
      query_data[k] = v;
    }
  }

  if (path == "sys/metrics" && (in.method == "GET" || in.method == "HEAD") && !list &&
      !query_data.contains("format") && AcceptsPrometheus(in.accept)) {
    query_data["format"] = "prometheus";
  }

  const std::string& m = in.method;
  bool use_body = false;
  if (m == "GET") {
    req.set_operation(list ? ipc::OP_LIST : ipc::OP_READ);
  } else if (m == "LIST") {
    req.set_operation(ipc::OP_LIST);
  } else if (m == "POST" || m == "PUT") {
    req.set_operation(ipc::OP_UPDATE);
    use_body = true;
  } else if (m == "PATCH") {
    absl::string_view ct = absl::StripAsciiWhitespace(
        Av(std::string_view(in.content_type).substr(0, in.content_type.find(';'))));
    if (!absl::EqualsIgnoreCase(ct, "application/merge-patch+json")) {
      return ErrorOut(415,
                      {"PATCH requires Content-Type of application/merge-patch+json, provided " +
                       in.content_type});
    }
    req.set_operation(ipc::OP_PATCH);
    use_body = true;
  } else if (m == "DELETE") {
    req.set_operation(ipc::OP_DELETE);
  } else if (m == "HEAD") {
    req.set_operation(ipc::OP_HEAD);
  } else {
    return ErrorOut(405, {});
  }
  if (req.operation() == ipc::OP_LIST && !path.empty() && path.back() != '/') path.push_back('/');

  if (use_body && IsSnapshotPath(path)) {
    // Binary: base64 strings, each within the string-length limit, checked against the limits
    // as the broker will check them.
    if (in.body.size() > kMaxSnapshotBytes) return SnapshotTooLarge(in.body.size());
    const std::string b64 = absl::Base64Escape(Av(in.body));
    size_t chunk = std::min<uint64_t>(limits.max_string_length, 768 * 1024) / 4 * 4;
    if (chunk == 0) chunk = 4;
    json::array chunks;
    for (size_t at = 0; at < b64.size(); at += chunk) chunks.emplace_back(b64.substr(at, chunk));
    json::object o;
    o["snapshot"] = std::move(chunks);
    std::string data = json::serialize(o);
    if (core::CheckJsonLimits(data, limits) != core::JsonLimit::kNone) {
      return ErrorOut(413, {absl::StrCat("snapshot of ", in.body.size(),
                                         " bytes is over this listener's JSON limits")});
    }
    req.set_has_data(true);
    req.set_data_json(std::move(data));
  } else if (use_body) {
    // The limits first, in one pass over the bytes: a body over them is never parsed into
    // values, and never reaches the broker.
    const core::JsonLimit over = core::CheckJsonLimits(in.body, limits);
    if (over != core::JsonLimit::kNone && over != core::JsonLimit::kSyntax) {
      return ErrorOut(JsonLimitStatus(over), {std::string(core::JsonLimitError(over))});
    }
    auto obj = core::ParseObject(in.body, limits.max_depth);
    if (!obj.ok()) return ErrorOut(400, {std::string(obj.status().message())});
    // Not JSON to the scan is never JSON to the parser (json_limits.h); were they ever to
    // disagree, the body stays refused rather than pass unchecked.
    if (over == core::JsonLimit::kSyntax) return ErrorOut(400, {"failed to parse JSON input"});
    req.set_has_data(!in.body.empty());
    req.set_data_json(json::serialize(*obj));
  } else {
    req.set_has_data(!query_data.empty());
    req.set_data_json(json::serialize(query_data));
  }

  req.set_path(std::move(path));
  if (!in.vault_token.empty()) {
    req.set_token(std::string(absl::StripAsciiWhitespace(in.vault_token)));
  } else if (in.authorization.starts_with("Bearer ")) {
    req.set_token(
        std::string(absl::StripAsciiWhitespace(Av(std::string_view(in.authorization).substr(7)))));
  }
  req.set_remote_address(in.remote_address);
  req.set_remote_port(in.remote_port);
  req.set_wrap_ttl(in.wrap_ttl);
  req.set_namespace_(in.vault_namespace);
  req.set_no_request_forwarding(in.no_request_forwarding);
  return req;
}

bool AcceptsPrometheus(std::string_view accept) {
  const std::string_view first = accept.substr(0, accept.find(','));
  const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(Av(first));
  return absl::StartsWith(trimmed, "application/openmetrics-text") ||
         absl::StrContains(Av(accept), "prometheus/telemetry");
}

bool IsSnapshotPath(std::string_view path) {
  return path == "sys/storage/raft/snapshot" || path == "sys/storage/raft/snapshot-force";
}

bool IsSnapshotTarget(std::string_view target) {
  std::string_view raw_path = target.substr(0, target.find('?'));
  if (!raw_path.starts_with("/v1/")) return false;
  std::string path;
  return UrlDecode(raw_path.substr(4), false, &path) && IsSnapshotPath(path);
}

HttpOut SnapshotTooLarge(uint64_t size) {
  return ErrorOut(413, {absl::StrCat(size == 0 ? std::string("the snapshot")
                                               : absl::StrCat("a snapshot of ", size, " bytes"),
                                     " is over the limit of ", kMaxSnapshotBytes, " bytes")});
}

HttpOut EncodeSnapshotResponse(const ipc::Response& r) {
  if (r.kind() != ipc::Response::RAW || (r.http_status() != 0 && r.http_status() != 200)) {
    return EncodeResponse(r);
  }
  boost::system::error_code ec;
  json::value d = json::parse(r.data_json(), ec);
  if (ec || !d.is_object()) return ErrorOut(500, {"internal error"});
  const json::value* chunks = d.as_object().if_contains("snapshot");
  if (chunks == nullptr || !chunks->is_array()) return ErrorOut(500, {"internal error"});
  std::string b64;
  for (const auto& c : chunks->as_array()) {
    if (!c.is_string()) return ErrorOut(500, {"internal error"});
    b64.append(c.as_string().data(), c.as_string().size());
  }
  HttpOut out;
  if (!absl::Base64Unescape(b64, &out.body)) return ErrorOut(500, {"internal error"});
  out.status = 200;
  out.content_type = "application/octet-stream";
  out.content_disposition = "attachment; filename=\"raft.snap\"";
  return out;
}

namespace {

// The Vault envelope around the broker's JSON, written out directly: data, auth and wrap_info
// are the broker's serialisations (compact, as json::serialize writes them), placed as they are,
// so the bytes are those a parse and re-serialisation would give, without either (a KV read's
// data is most of the answer). Only the broker writes them; the worker trusts its broker.
HttpOut EncodeLogical(const ipc::Response& r) {
  const auto raw = [](const std::string& j) -> absl::string_view {
    return j.empty() ? absl::string_view("null") : absl::string_view(j);
  };
  std::string warnings = "null";
  if (r.warnings_size() > 0) {
    json::array w;
    for (const auto& s : r.warnings()) w.emplace_back(s);
    warnings = json::serialize(w);
  }
  const std::string request_id = json::serialize(json::string_view(r.request_id()));
  const std::string lease_id = json::serialize(json::string_view(r.lease_id()));
  const std::string mount_type = json::serialize(json::string_view(r.mount_type()));
  std::string body;
  body.reserve(160 + r.data_json().size() + r.auth_json().size() + r.wrap_info_json().size() +
               warnings.size());
  absl::StrAppend(&body, "{\"request_id\":", request_id, ",\"lease_id\":", lease_id,
                  ",\"renewable\":", r.renewable() ? "true" : "false",
                  ",\"lease_duration\":", r.lease_duration(), ",\"data\":", raw(r.data_json()),
                  ",\"wrap_info\":", raw(r.wrap_info_json()), ",\"warnings\":", warnings);
  absl::StrAppend(&body, ",\"auth\":", raw(r.auth_json()), ",\"mount_type\":", mount_type, "}\n");
  return HttpOut{r.http_status() ? r.http_status() : 200, std::move(body), false, "", "", ""};
}

}  // namespace

HttpOut EncodeResponse(const ipc::Response& r) {
  switch (r.kind()) {
    case ipc::Response::EMPTY:
      return HttpOut{204, "", false, "", "", ""};
    case ipc::Response::RAW:
      if (!r.content_type().empty()) {
        // Not JSON (sys/metrics?format=prometheus): the body as the broker made it.
        return HttpOut{r.http_status() ? r.http_status() : 200,
                       r.body(),
                       r.head_only(),
                       r.redirect_to(),
                       r.content_type(),
                       ""};
      }
      // A raw response without a body (Vault's RespondWithStatusCode(nil, …)) stays empty.
      return HttpOut{r.http_status() ? r.http_status() : 200,
                     r.data_json().empty() ? "" : r.data_json() + "\n",
                     r.head_only(),
                     r.redirect_to(),
                     "",
                     ""};
    case ipc::Response::ERROR: {
      const unsigned status = r.http_status() ? r.http_status() : HttpStatusFor(r.error_code());
      json::object o;
      json::array a;
      if (status == 500) {
        // The broker sends internal detail only when it is meant for the client (after
        // "internal error"); a worker never adds any of its own.
        a.emplace_back("internal error");
        for (int i = 1; i < r.errors_size(); ++i) a.emplace_back(r.errors(i));
      } else {
        for (const auto& e : r.errors()) a.emplace_back(e);
      }
      o["errors"] = std::move(a);
      if (!r.data_json().empty()) {
        boost::system::error_code ec;
        json::value d = json::parse(r.data_json(), ec);
        if (!ec) o["data"] = std::move(d);
      }
      return HttpOut{status, json::serialize(o) + "\n", false, "", "", ""};
    }
    case ipc::Response::LOGICAL: {
      if (!r.inject_data()) return EncodeLogical(r);
      json::object o;
      o["request_id"] = r.request_id();
      o["lease_id"] = r.lease_id();
      o["renewable"] = r.renewable();
      o["lease_duration"] = r.lease_duration();
      boost::system::error_code ec;
      json::value data =
          r.data_json().empty() ? json::value(nullptr) : json::parse(r.data_json(), ec);
      if (ec) return ErrorOut(500, {"internal error"});
      json::value auth =
          r.auth_json().empty() ? json::value(nullptr) : json::parse(r.auth_json(), ec);
      if (ec) return ErrorOut(500, {"internal error"});
      if (r.inject_data() && data.is_object()) {
        for (const auto& [k, v] : data.as_object()) o[k] = v;
      }
      json::value wrap =
          r.wrap_info_json().empty() ? json::value(nullptr) : json::parse(r.wrap_info_json(), ec);
      if (ec) return ErrorOut(500, {"internal error"});
      o["data"] = std::move(data);
      o["wrap_info"] = std::move(wrap);
      if (r.warnings_size() == 0) {
        o["warnings"] = nullptr;
      } else {
        json::array w;
        for (const auto& s : r.warnings()) w.emplace_back(s);
        o["warnings"] = std::move(w);
      }
      o["auth"] = std::move(auth);
      o["mount_type"] = r.mount_type();
      return HttpOut{
          r.http_status() ? r.http_status() : 200, json::serialize(o) + "\n", false, "", "", ""};
    }
    default:
      return ErrorOut(500, {"internal error"});
  }
}

}  // namespace strongroom::worker
