#include "cli/agent/auth.h"

#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"
#include "cli/agent/files.h"

namespace strongroom::agent {
namespace {

// A credential file's content without surrounding white space (files written by `echo`).
absl::StatusOr<std::string> ReadCredential(const std::string& path, std::string_view what) {
  auto content = ReadFileBounded(path, kMaxCredentialBytes);
  if (!content.ok()) {
    return absl::Status(content.status().code(),
                        absl::StrCat(Av(what), ": ", content.status().message()));
  }
  std::string value(absl::StripAsciiWhitespace(*content));
  if (value.empty())
    return absl::FailedPreconditionError(absl::StrCat(Av(what), ": ", path, " is empty"));
  return value;
}

std::string ConfigValue(const AuthMethod& m, std::string_view key, std::string_view fallback = "") {
  auto it = m.config.find(key);
  return it == m.config.end() ? std::string(fallback) : it->second;
}

}  // namespace

absl::StatusOr<LoginResult> Authenticator::Send(client::Client& client, const json::object& body) {
  client::RequestOptions options;
  // Never the client's own wrapping: only the method's wrap_ttl wraps a login.
  options.wrap_ttl = method_.wrap_ttl > absl::ZeroDuration()
                         ? absl::StrCat(absl::ToInt64Seconds(method_.wrap_ttl), "s")
                         : "";
  auto secret = client.LoginRequest(method_.mount_path, body, options);
  if (!secret.ok()) return secret.status();
  LoginResult result;
  if (method_.wrap_ttl > absl::ZeroDuration()) {
    if (!secret->wrap_info) return absl::InternalError("authentication returned nil wrap info");
    if (secret->wrap_info->token.empty()) {
      return absl::InternalError("authentication returned empty wrapped client token");
    }
    result.wrapped = std::move(secret->wrap_info);
    return result;
  }
  if (!secret->auth || secret->auth->client_token.empty()) {
    return absl::InternalError("the login answer holds no token");
  }
  result.auth = std::move(*secret->auth);
  return result;
}

absl::StatusOr<LoginResult> Authenticator::LoginAppRole(client::Client& client) {
  const AuthMethod& method = method_;
  auto role_id = ReadCredential(ConfigValue(method, "role_id_file_path"), "role_id");
  if (!role_id.ok()) return role_id.status();
  const std::string secret_path = ConfigValue(method, "secret_id_file_path");
  bool from_file = false;
  if (!secret_path.empty()) {
    auto s = ReadCredential(secret_path, "secret_id");
    if (s.ok()) {
      secret_id_ = std::move(*s);
      from_file = true;
    } else if (!absl::IsNotFound(s.status()) || secret_id_.empty()) {
      return s.status();  // no file and nothing kept from an earlier read
    }
  }
  json::object body;
  body["role_id"] = *role_id;
  if (!secret_id_.empty()) body["secret_id"] = secret_id_;
  auto auth = Send(client, body);
  if (auth.ok() && from_file) {
    const std::string remove = ConfigValue(method, "remove_secret_id_file_after_reading", "true");
    if (bool yes = false; ParseGoBool(remove, &yes) && yes) {
      unlink(secret_path.c_str());
    }
  }
  return auth;
}

absl::StatusOr<LoginResult> Authenticator::Login(client::Client& client) {
  const AuthMethod& method = method_;
  if (method.type == "kubernetes") {
    auto jwt = ReadCredential(ConfigValue(method, "token_path"), "service account token");
    if (!jwt.ok()) return jwt.status();
    json::object body;
    body["role"] = ConfigValue(method, "role");
    body["jwt"] = *jwt;
    return Send(client, body);
  }
  if (method.type == "approle") return LoginAppRole(client);
  if (method.type == "token_file") {
    auto token = ReadCredential(ConfigValue(method, "token_file_path"), "token_file");
    if (!token.ok()) return token.status();
    const std::string previous = client.token();
    client.SetToken(*token);
    auto lookup = client.LookupSelf();
    client.SetToken(previous);
    if (!lookup.ok()) return lookup.status();
    LoginResult result;
    client::Auth& auth = result.auth;
    auth.client_token = std::move(*token);
    if (lookup->data.is_object()) {
      const auto& d = lookup->data.as_object();
      if (auto it = d.find("ttl"); it != d.end() && it->value().is_int64()) {
        auth.lease_duration = it->value().as_int64();
      }
      if (auto it = d.find("renewable"); it != d.end() && it->value().is_bool()) {
        auth.renewable = it->value().as_bool();
      }
    }
    return result;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported auth method ", method.type));
}

absl::StatusOr<std::string> SinkContent(client::Client& client, const FileSink& sink,
                                        const std::string& token) {
  if (sink.wrap_ttl <= absl::ZeroDuration()) return token;
  // Asked with the token itself (the default policy allows sys/wrapping/wrap), whatever token
  // the client holds.
  const std::string previous = client.token();
  client.SetToken(token);
  json::object data;
  data["token"] = token;
  auto info = client.Wrap(data, absl::StrCat(absl::ToInt64Seconds(sink.wrap_ttl), "s"));
  client.SetToken(previous);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("sink ", sink.path,
                                     ": error wrapping token, not writing out "
                                     "to sink: ",
                                     info.status().message()));
  }
  return client::WrapInfoJson(*info);
}

absl::Status WriteSink(const FileSink& sink, const std::string& content) {
  if (absl::Status s = AtomicWrite(sink.path, content, sink.mode, /*create_dirs=*/false); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("sink ", sink.path, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace strongroom::agent
