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

absl::StatusOr<client::Auth> Authenticator::LoginAppRole(client::Client& client) {
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
  auto auth = client.LoginAppRole(method.mount_path, *role_id, secret_id_);
  if (auth.ok() && from_file) {
    const std::string remove = ConfigValue(method, "remove_secret_id_file_after_reading", "true");
    if (bool yes = false; ParseGoBool(remove, &yes) && yes) {
      unlink(secret_path.c_str());
    }
  }
  return auth;
}

absl::StatusOr<client::Auth> Authenticator::Login(client::Client& client) {
  const AuthMethod& method = method_;
  if (method.type == "kubernetes") {
    auto jwt = ReadCredential(ConfigValue(method, "token_path"), "service account token");
    if (!jwt.ok()) return jwt.status();
    return client.LoginKubernetes(method.mount_path, ConfigValue(method, "role"), *jwt);
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
    client::Auth auth;
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
    return auth;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported auth method ", method.type));
}

absl::Status WriteSinks(const std::vector<FileSink>& sinks, const std::string& token) {
  for (const FileSink& sink : sinks) {
    if (absl::Status s = AtomicWrite(sink.path, token, sink.mode, /*create_dirs=*/false); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("sink ", sink.path, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace strongroom::agent
