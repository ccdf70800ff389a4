// Response wrapping (Vault's sys/wrapping and X-Vault-Wrap-TTL): a response is stored in the
// cubbyhole of a new single-use token, whose only policy is "response-wrapping", and the client
// gets that token (wrap_info) instead of the response. Unwrapping spends the token's one use,
// reads the response and revokes the token with its cubbyhole; whoever unwraps second is refused,
// which is how a recipient learns that someone else opened it.
#include "absl/strings/str_cat.h"
#include "appliance/core/core.h"
#include "base/status_macros.h"
#include "policy/builtin_policies.h"

namespace strongroom::core {
namespace {

constexpr char kResponseKey[] = "response";

json::value OrNull(const std::optional<json::object>& o) {
  return o ? json::value(*o) : json::value(nullptr);
}

absl::Status NotAWrappingToken() {
  return absl::InvalidArgumentError("wrapping token is not valid or does not exist");
}

}  // namespace

bool IsWrappingToken(const TokenEntry& e) { return e.wrapping && !e.IsBatch(); }

bool Wrappable(const Response& r) {
  return r.kind == Response::Kind::kLogical && (r.data.has_value() || r.auth.has_value());
}

absl::StatusOr<Response> Core::Wrap(const json::object& stored, const std::string& creation_path,
                                    int64_t ttl, const std::string& wrapped_accessor) {
  if (ttl <= 0) return absl::InvalidArgumentError("wrapping TTL must be positive");
  TokenEntry e;
  e.policies = {std::string(policy::kResponseWrappingPolicyName)};
  e.wrapping = true;
  e.path = creation_path;
  e.display_name = "";
  e.num_uses = 1;
  e.orphan = true;
  e.renewable = false;
  const int64_t now = absl::ToUnixSeconds(Now());
  e.ttl = ttl;
  e.creation_ttl = ttl;
  RETURN_IF_ERROR(AddSeconds(now, ttl, &e.expire_unix));
  e.max_expire_unix = e.expire_unix;
  e.explicit_max_ttl = ttl;
  // As Vault keeps it: cubbyhole/response holds {"response": "<the answer as JSON text>"}.
  json::object value;
  value[kResponseKey] = Serialize(stored);
  ASSIGN_OR_RETURN(std::string token,
                   tokens_.CreateWithCubbyhole(e, {{kResponseKey, Serialize(value)}}));
  json::object info;
  info["token"] = token;
  info["accessor"] = e.accessor;
  info["ttl"] = ttl;
  info["creation_time"] = FormatRfc3339Nano(absl::FromUnixSeconds(e.creation_unix));
  info["creation_path"] = creation_path;
  if (!wrapped_accessor.empty()) info["wrapped_accessor"] = wrapped_accessor;
  Response out;
  out.wrap_info = std::move(info);
  return out;
}

absl::StatusOr<Response> Core::WrapResponse(const Request& req, const Response& r) {
  json::object stored;
  stored["data"] = OrNull(r.data);
  stored["auth"] = OrNull(r.auth);
  stored["lease_id"] = r.lease_id;
  stored["lease_duration"] = r.lease_duration;
  stored["renewable"] = r.renewable;
  json::array warnings;
  for (const auto& w : r.warnings) warnings.emplace_back(w);
  stored["warnings"] = std::move(warnings);
  stored["mount_type"] = req.mount_type;
  return Wrap(stored, req.path, req.wrap_ttl, WrappedAccessor(stored));
}

std::string Core::WrappedAccessor(const json::object& stored) {
  if (auto* a = stored.if_contains("auth"); a != nullptr && a->is_object()) {
    if (auto* acc = a->as_object().if_contains("accessor"); acc != nullptr && acc->is_string()) {
      return std::string(acc->as_string());
    }
  }
  return "";
}

absl::StatusOr<json::object> Core::TakeWrapped(
    std::string_view token,
    const std::function<absl::Status(const TokenEntry&, const json::object&)>& before_delete) {
  std::optional<json::object> stored;
  ASSIGN_OR_RETURN(
      auto taken,
      tokens_.TakeCubbyhole(token, kResponseKey,
                            [&](const TokenEntry& e, const std::string& raw) -> absl::Status {
                              if (!IsWrappingToken(e))
                                return NotAWrappingToken();  // nothing is spent
                              ASSIGN_OR_RETURN(auto value, ParseObject(raw));
                              ASSIGN_OR_RETURN(auto text, GetString(value, kResponseKey));
                              if (!text) return absl::DataLossError("wrapped response: bad form");
                              ASSIGN_OR_RETURN(stored, ParseObject(*text));
                              return before_delete ? before_delete(e, *stored) : absl::OkStatus();
                            }));
  // Unknown, expired, spent (someone else unwrapped it first) or not a wrapping token.
  if (!taken || !stored) return NotAWrappingToken();
  return std::move(*stored);
}

Response Core::UnwrappedResponse(const json::object& stored) {
  Response r;
  if (auto* d = stored.if_contains("data"); d != nullptr && d->is_object()) r.data = d->as_object();
  if (auto* a = stored.if_contains("auth"); a != nullptr && a->is_object()) r.auth = a->as_object();
  if (auto* l = stored.if_contains("lease_id"); l != nullptr && l->is_string()) {
    r.lease_id = std::string(l->as_string());
  }
  if (auto* l = stored.if_contains("lease_duration"); l != nullptr && l->is_int64()) {
    r.lease_duration = l->as_int64();
  }
  if (auto* l = stored.if_contains("renewable"); l != nullptr && l->is_bool()) {
    r.renewable = l->as_bool();
  }
  if (auto* w = stored.if_contains("warnings"); w != nullptr && w->is_array()) {
    for (const auto& s : w->as_array()) {
      if (s.is_string()) r.warnings.emplace_back(s.as_string());
    }
  }
  return r;
}

bool Core::UnwrapsItself(const Request& req, const TokenEntry& token) {
  if (req.path != "sys/wrapping/unwrap" || !IsWrappingToken(token)) return false;
  auto body = GetString(req.data, "token");
  return !body.ok() || !body->has_value() || body->value().empty() ||
         body->value() == req.client_token;
}

absl::StatusOr<Response> Core::WrappingEndpoint(Request& req, std::string_view op) {
  if (!IsWrite(req)) return UnsupportedOperation();
  ASSIGN_OR_RETURN(auto body_token, GetString(req.data, "token"));
  const std::string token = body_token.value_or("");
  if (op == "wrap") {
    if (req.wrap_ttl <= 0) {
      return absl::InvalidArgumentError(
          "no wrapping TTL given: send the X-Vault-Wrap-TTL header with the request");
    }
    if (req.data.empty()) return absl::InvalidArgumentError("no data provided to wrap");
    return Response::Data(req.data);  // wrapped on the way out, as any response
  }
  if (op == "lookup") {
    if (token.empty()) return absl::InvalidArgumentError("missing \"token\" value in input");
    ASSIGN_OR_RETURN(auto e, tokens_.Lookup(token));
    if (!e || !IsWrappingToken(*e)) return NotAWrappingToken();
    json::object d;
    d["creation_path"] = e->path;
    d["creation_time"] = FormatRfc3339Nano(absl::FromUnixSeconds(e->creation_unix));
    d["creation_ttl"] = e->creation_ttl;
    return Response::Data(std::move(d));
  }
  if (op == "unwrap") {
    // The wrapping token is the request's own (the pipeline left its use to this call), or the
    // body names it and the caller's own token authorised the request.
    ASSIGN_OR_RETURN(auto stored, TakeWrapped(token.empty() ? req.client_token : token, nullptr));
    return UnwrappedResponse(stored);
  }
  if (op == "rewrap") {
    if (token.empty()) return absl::InvalidArgumentError("missing \"token\" value in input");
    // The new token is made before the old one is spent, under the old one's lock: a failure
    // loses nothing, and of two rewraps racing only one succeeds.
    std::optional<Response> rewrapped;
    RETURN_IF_ERROR(TakeWrapped(token, [&](const TokenEntry& old, const json::object& stored) {
                      ASSIGN_OR_RETURN(rewrapped, Wrap(stored, old.path, old.creation_ttl,
                                                       WrappedAccessor(stored)));
                      return absl::OkStatus();
                    }).status());
    return std::move(*rewrapped);
  }
  return absl::NotFoundError("unsupported path");
}

}  // namespace strongroom::core
