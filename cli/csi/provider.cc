#include "cli/csi/provider.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "appliance/core/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/template/functions.h"
#include "client/client.h"

namespace strongroom::csi {
namespace {

// A cached token this close to its expiry is not used: a request in flight would outlive it.
constexpr absl::Duration kExpiryMargin = absl::Seconds(10);

// One of Vault's error strings on one line. client/ passes them on with control characters
// escaped ("\x0a"); Vault's multierror text ("1 error occurred:\n\t* permission denied\n\n")
// becomes its listed errors alone.
std::string TidyVaultError(std::string_view e) {
  const std::string text = absl::StrReplaceAll(Av(e), {{"\\x0a", "\n"}, {"\\x09", "\t"}});
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  std::vector<std::string> items;
  if (!lines.empty() && absl::EndsWith(lines.front(), "occurred:")) {
    for (size_t i = 1; i < lines.size(); ++i) {
      absl::string_view l = absl::StripLeadingAsciiWhitespace(lines[i]);
      if (absl::ConsumePrefix(&l, "* ")) items.emplace_back(l);
    }
  }
  if (items.empty()) {
    items = std::move(lines);
    for (std::string& l : items) absl::StrReplaceAll({{"\t", " "}}, &l);
  }
  return absl::StrJoin(items, "; ");
}

// A client error on one line: "Vault answered 403: permission denied", or the transport's own
// message. Vault's error strings are passed on (bounded and made printable by client/); the
// request's body and the token are never part of them.
std::string Cause(const absl::Status& s) {
  const int code = client::HttpStatusOf(s);
  if (code == 0) {
    std::string m(s.message());
    for (char& c : m) {
      if (c == '\n') c = ' ';
    }
    return m;
  }
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
    if (absl::StartsWith(line, "* ")) errors.push_back(TidyVaultError(Sv(line.substr(2))));
  }
  if (errors.empty()) {
    const char* what = code == 404   ? "no secret at this path"
                       : code == 403 ? "permission denied"
                       : code == 400 ? "bad request"
                                     : "request failed";
    return absl::StrCat("Vault answered ", code, ": ", what);
  }
  return absl::StrCat("Vault answered ", code, ": ", absl::StrJoin(errors, "; "));
}

absl::Status Failure(absl::StatusCode code, std::string message) {
  return absl::Status(code, std::move(message));
}

bool HexDecode(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  out->reserve(in.size() / 2);
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = nibble(in[i]), lo = nibble(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

// Go's base64.StdEncoding: the standard alphabet, padded (CR and LF ignored).
bool Base64Decode(std::string_view in, std::string* out) {
  std::string clean;
  clean.reserve(in.size());
  for (char c : in) {
    if (c == '\r' || c == '\n') continue;
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) {
      return false;
    }
    clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return false;
  const size_t pad = clean.find('=');
  if (pad != std::string::npos &&
      (clean.size() - pad > 2 || clean.find_first_not_of('=', pad) != std::string::npos)) {
    return false;
  }
  return absl::Base64Unescape(clean, out);
}

// The whole response as Vault's provider writes it: Go's json.Marshal of the api.Secret
// (request_id, lease_id, lease_duration, renewable, data, warnings, then auth, wrap_info and
// mount_type when the answer has them), maps with their keys sorted. One deviation: request_id
// is written empty. Vault's server makes a new one for every request, so with it the content,
// and so the object's version, would change on every rotation poll although the secret did not.
absl::StatusOr<std::string> WholeSecretJson(const client::Secret& s, size_t max_bytes) {
  auto enc = [&](const json::value& v) { return tmpl::EncodeJson(v, false, max_bytes); };
  std::string out = "{";
  auto field = [&](std::string_view name, const json::value& v) -> absl::Status {
    auto e = enc(v);
    if (!e.ok()) return e.status();
    if (out.size() > 1) out.push_back(',');
    absl::StrAppend(&out, "\"", Av(name), "\":", *e);
    if (out.size() > max_bytes) return absl::ResourceExhaustedError("too large");
    return absl::OkStatus();
  };
  auto raw = [&](std::string_view key) -> json::value {
    auto it = s.raw.find(key);
    return it == s.raw.end() ? json::value(nullptr) : it->value();
  };
  for (absl::Status st :
       {field("request_id", json::string()), field("lease_id", json::string(s.lease_id)),
        field("lease_duration", s.lease_duration), field("renewable", s.renewable),
        field("data", s.data), field("warnings", raw("warnings"))}) {
    if (!st.ok()) return st;
  }
  for (std::string_view optional : {"auth", "wrap_info"}) {
    json::value v = raw(optional);
    if (!v.is_null()) {
      if (absl::Status st = field(optional, v); !st.ok()) return st;
    }
  }
  if (json::value v = raw("mount_type"); v.is_string() && !v.as_string().empty()) {
    if (absl::Status st = field("mount_type", v); !st.ok()) return st;
  }
  out.push_back('}');
  return out;
}

// What an object yields from its response (see provider.h). Errors name the cause only; the
// caller adds the object.
absl::StatusOr<std::string> Content(const ObjectSpec& o, const client::Secret& s,
                                    size_t max_bytes) {
  if (!s.data.is_object()) {
    return Failure(absl::StatusCode::kFailedPrecondition, "Vault's answer holds no data");
  }
  if (o.secret_key.empty()) {
    auto whole = WholeSecretJson(s, max_bytes);
    if (!whole.ok()) {
      return Failure(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("the response is larger than ", max_bytes, " bytes as JSON"));
    }
    return whole;
  }
  const json::object* data = &s.data.as_object();
  if (auto it = data->find("data"); it != data->end() && it->value().is_object()) {
    data = &it->value().as_object();  // KV v2: data.data
  }
  auto it = data->find(o.secret_key);
  if (it == data->end()) {
    return Failure(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("key \"", o.secret_key, "\" does not exist at the secret path"));
  }
  std::string value;
  if (it->value().is_string()) {
    value = std::string(it->value().as_string());
  } else {
    auto e = tmpl::EncodeJson(it->value(), false, max_bytes);
    if (!e.ok()) {
      return Failure(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("failed to extract secret content as string or JSON from key \"",
                                  o.secret_key, "\""));
    }
    value = std::move(*e);
  }
  if (o.encoding.empty() || absl::EqualsIgnoreCase(o.encoding, "utf-8")) return value;
  std::string decoded;
  const bool base64 = absl::EqualsIgnoreCase(o.encoding, "base64");
  if (base64 ? !Base64Decode(value, &decoded) : !HexDecode(value, &decoded)) {
    return Failure(absl::StatusCode::kFailedPrecondition,
                   absl::StrCat("the value of key \"", o.secret_key, "\" is not valid ",
                                base64 ? "base64" : "hex", " (encoding: ", o.encoding, ")"));
  }
  return decoded;
}

}  // namespace

absl::StatusOr<VaultRequestPath> SplitSecretPath(std::string_view secret_path) {
  std::string_view p = secret_path;
  if (absl::StartsWith(Av(p), "/v1/")) {
    p.remove_prefix(4);
  } else if (absl::StartsWith(Av(p), "v1/")) {
    p.remove_prefix(3);
  } else if (absl::StartsWith(Av(p), "/")) {
    p.remove_prefix(1);
  }
  VaultRequestPath out;
  const size_t q = p.find('?');
  out.path = std::string(p.substr(0, q));
  if (q != std::string_view::npos) out.query = std::string(p.substr(q + 1));
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  if (out.path.empty()) return absl::InvalidArgumentError("secretPath names no path");
  for (char c : out.query) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
      return absl::InvalidArgumentError("secretPath has an invalid query string");
    }
  }
  return out;
}

std::string Provider::Version(const ObjectSpec& object, std::string_view content,
                              std::string_view scope) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // The scope first, length-prefixed (it cannot run into the canonical configuration).
  std::string input = absl::StrCat(scope.size(), ":", Av(scope));
  input.append(object.canonical);
  input.append(content);
  const bool ok = HMAC(EVP_sha256(), hmac_key_.data(), static_cast<int>(hmac_key_.size()),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                       &mac_len) != nullptr;
  if (!ok) return "";  // never happens with SHA-256; an empty version still mounts
  std::string v;
  absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), static_cast<size_t>(mac_len)), &v);
  while (v.size() % 4 != 0) v.push_back('=');  // Go's base64.URLEncoding pads
  return v;
}

absl::StatusOr<MountResult> Provider::Mount(const MountParams& params,
                                            const std::function<bool()>& cancelled) {
  const absl::Time deadline = cache_->Now() + config_.mount_deadline;
  client::Config cc;
  cc.address = params.vault_address.empty() ? config_.vault_address : params.vault_address;
  cc.namespace_ = params.vault_namespace.empty() ? config_.vault_namespace : params.vault_namespace;
  cc.timeout = config_.timeout;
  cc.max_response_bytes = config_.max_response_bytes;
  cc.tls = config_.tls;
  if (!params.tls.ca_cert.empty() || !params.tls.ca_directory.empty()) {
    cc.tls.ca_pem.clear();
    cc.tls.ca_file = params.tls.ca_cert;
    cc.tls.ca_path = params.tls.ca_directory;
  }
  if (!params.tls.server_name.empty()) cc.tls.server_name = params.tls.server_name;
  if (!params.tls.client_cert.empty()) {
    cc.tls.client_cert_file = params.tls.client_cert;
    cc.tls.client_key_file = params.tls.client_key;
  }
  if (params.tls.skip_verify) cc.tls.skip_verify = *params.tls.skip_verify;
  const std::string mount =
      params.auth_mount_path.empty() ? config_.auth_mount : params.auth_mount_path;

  auto created = client::Client::Create(cc);
  if (!created.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter \"vaultAddress\": ", created.status().message()));
  }
  client::Client& c = *created;

  // Everything that decides which token a login gives, except the JWT (rotated by the kubelet)
  // and the objects.
  const std::string key = core::Serialize(json::array{
      json::string(cc.address), json::string(cc.namespace_), json::string(cc.tls.ca_file),
      json::string(cc.tls.ca_path), json::string(cc.tls.server_name),
      json::string(cc.tls.client_cert_file), json::string(cc.tls.client_key_file),
      cc.tls.skip_verify, json::string(mount), json::string(params.role_name),
      json::string(params.audience), json::string(params.pod.namespace_),
      json::string(params.pod.service_account_name), json::string(params.pod.name),
      json::string(params.pod.uid)});
  const std::string who = params.pod.namespace_.empty()
                              ? std::string("the pod")
                              : absl::StrCat("service account ", params.pod.namespace_, "/",
                                             params.pod.service_account_name);

  // A token is cached only for a mount that names its pod (uid, namespace, service account: the
  // kubelet's podInfoOnMount). Without them every pod would share the entry, and a pod's own
  // volume attributes could name another pod's (review finding): log in on every mount instead.
  const bool cacheable = !params.pod.uid.empty() && !params.pod.namespace_.empty() &&
                         !params.pod.service_account_name.empty();

  MountResult result;
  auto login = [&]() -> absl::StatusOr<std::string> {
    std::string jwt = params.pod.service_account_token;
    if (jwt.empty()) {
      if (jwt_source_ == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the driver passed no service account token for audience \"",
            params.audience.empty() ? Av(kDefaultAudience) : Av(params.audience),
            "\" (set tokenRequests on the CSIDriver) and the provider has no Kubernetes API "
            "access to request one"));
      }
      auto requested = jwt_source_->ServiceAccountToken(params.pod, params.audience);
      if (!requested.ok()) return requested.status();
      jwt = std::move(*requested);
    }
    c.ClearToken();
    auto auth = c.LoginKubernetes(mount, params.role_name, jwt);
    if (!auth.ok()) {
      const absl::StatusCode code = client::HttpStatusOf(auth.status()) == 400
                                        ? absl::StatusCode::kPermissionDenied
                                        : auth.status().code();
      return absl::Status(
          code, absl::StrCat("login to ", cc.address, " (auth/", absl::StripPrefix(mount, "auth/"),
                             ", role ", params.role_name, ") as ", who,
                             " failed: ", Cause(auth.status())));
    }
    LogDebug("login to %s (auth/%s, role %s) as %s: token ttl %ds, %s", cc.address,
             absl::StripPrefix(mount, "auth/"), params.role_name, who,
             static_cast<int>(auth->lease_duration),
             auth->renewable ? "renewable" : "not renewable");
    CachedToken t = cache_->Make(auth->client_token, auth->lease_duration, auth->renewable);
    if (cacheable) cache_->Put(key, t);
    result.logged_in = true;
    return std::move(t.token);
  };

  // The cached token, renewed two thirds into its lease; a new login when there is none, it
  // is about to expire, or it cannot be renewed.
  std::string token;
  auto cached = cacheable ? cache_->Get(key) : decltype(cache_->Get(key)){};
  if (cached) {
    const absl::Time now = cache_->Now();
    if (now + kExpiryMargin < cached->expires_at) {
      if (now < cached->renew_at) {
        token = cached->token;
      } else if (cached->renewable) {
        c.SetToken(cached->token);
        auto renewed = c.RenewSelf(0);
        if (renewed.ok() && renewed->lease_duration > 2 * absl::ToInt64Seconds(kExpiryMargin)) {
          cache_->Put(key,
                      cache_->Make(cached->token, renewed->lease_duration, renewed->renewable));
          token = cached->token;
          LogDebug("token of %s renewed: ttl %ds", who, static_cast<int>(renewed->lease_duration));
        } else {
          LogInfo("token of %s not renewed (%s); logging in again", who,
                  renewed.ok() ? std::string("at its max_ttl") : Cause(renewed.status()));
        }
      }
    }
    if (token.empty()) cache_->Erase(key, cached->token);
  }
  if (token.empty()) {
    auto t = login();
    if (!t.ok()) return t.status();
    token = std::move(*t);
  }
  c.SetToken(token);

  // Where the content came from, in every version: the same object against another Vault,
  // Vault namespace or pod namespace is another version (review: versions must not let one
  // tenant confirm a guess about another's secret by matching them).
  const std::string scope = core::Serialize(json::array{
      json::string(cc.address), json::string(cc.namespace_), json::string(params.pod.namespace_)});
  std::map<std::string, client::Secret> responses;  // one request per mount, whatever uses it
  bool relogged = result.logged_in;
  uint64_t total = 0;
  uint64_t answers_bytes = 0;
  for (const ObjectSpec& o : params.objects) {
    if (cancelled != nullptr && cancelled()) {
      return absl::CancelledError("the driver cancelled the mount");
    }
    if (cache_->Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the mount took longer than ", absl::FormatDuration(config_.mount_deadline),
                       " (object \"", o.object_name, "\" not read)"));
    }
    auto label = [&](std::string_view method, std::string_view path) {
      return absl::StrCat("object \"", o.object_name, "\" (", Av(method), " ", Av(path), ")");
    };
    auto split = SplitSecretPath(o.secret_path);
    if (!split.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(o.method, o.secret_path), ": ", split.status().message()));
    }
    const std::string where = label(o.method, split->path);
    std::string body_json;
    if (o.secret_args) {
      auto b = tmpl::EncodeJson(json::value(*o.secret_args), false, kMaxSecretArgsBytes);
      if (!b.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": bad secretArgs"));
      body_json = std::move(*b);
    }
    const std::string request_key =
        absl::StrCat(o.method, " ", split->path, "?", split->query, "\n", body_json);
    auto found = responses.find(request_key);
    if (found == responses.end()) {
      const json::object* body = o.secret_args ? &*o.secret_args : nullptr;
      auto secret = c.Request(o.method, split->path, body, split->query);
      if (!secret.ok() && client::HttpStatusOf(secret.status()) == 403 && !relogged) {
        // The cached token may have been revoked or have lost its policies: once per mount,
        // log in again and retry.
        relogged = true;
        LogInfo("%s: 403 with the cached token of %s; logging in again", where, who);
        cache_->Erase(key, token);
        auto t = login();
        if (!t.ok()) return t.status();
        token = std::move(*t);
        c.SetToken(token);
        secret = c.Request(o.method, split->path, body, split->query);
      }
      if (!secret.ok()) {
        absl::StatusCode code = secret.status().code();
        if (code == absl::StatusCode::kUnknown || code == absl::StatusCode::kInternal ||
            code == absl::StatusCode::kCancelled) {
          code = absl::StatusCode::kUnavailable;
        }
        return absl::Status(code, absl::StrCat(where, ": ", Cause(secret.status())));
      }
      // Counted twice: the parsed body and its data are both kept.
      answers_bytes += 2 * core::Serialize(secret->raw).size();
      if (answers_bytes > config_.max_answers_bytes) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": the mount's Vault answers total more than ",
                         config_.max_answers_bytes, " bytes"));
      }
      found = responses.emplace(request_key, std::move(*secret)).first;
    }
    const uint64_t left = config_.max_files_bytes > total ? config_.max_files_bytes - total : 0;
    auto content = Content(o, found->second, static_cast<size_t>(left));
    if (!content.ok()) {
      return absl::Status(content.status().code(),
                          absl::StrCat(where, ": ", content.status().message()));
    }
    total += content->size();
    if (total > config_.max_files_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": the mount's files total more than ", config_.max_files_bytes,
                       " bytes (the driver's gRPC message limit)"));
    }
    result.versions.push_back(MountedObject{o.object_name, Version(o, *content, scope)});
    result.files.push_back(
        MountedFile{o.object_name, o.file_permission != 0 ? o.file_permission : params.permission,
                    std::move(*content)});
  }
  return result;
}

}  // namespace strongroom::csi
