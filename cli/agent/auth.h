// auto_auth: one login with the configured method, and the token sinks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/agent/config.h"
#include "client/client.h"

namespace strongroom::agent {

namespace json = boost::json;

// Credentials read from files (JWT, role and secret ids, a token) are bounded at this size.
inline constexpr size_t kMaxCredentialBytes = 64 * 1024;

// Logs in with `method` (kubernetes: the JWT at token_path, read afresh every time as the
// kubelet rotates it; approle: role_id_file_path and secret_id_file_path; token_file: the token
// at token_file_path, checked with lookup-self). Does not set the client's token.
//
// AppRole's secret id is single-use material: as Vault Agent does, its file is removed
// (unless remove_secret_id_file_after_reading is false), but only after a login with it
// succeeded, and the secret id is kept in memory for the next logins; a new file replaces it.
//
// With the method's wrap_ttl the login is sent with X-Vault-Wrap-TTL and the answer is the
// wrap_info (Vault Agent's method wrapping): `wrapped` is set and `auth` is empty.
struct LoginResult {
  client::Auth auth;
  std::optional<client::WrapInfo> wrapped;
};

class Authenticator {
 public:
  explicit Authenticator(AuthMethod method) : method_(std::move(method)) {}
  absl::StatusOr<LoginResult> Login(client::Client& client);
  const AuthMethod& method() const { return method_; }

 private:
  // The login request with the method's wrapping, checked: an auth with a token, or (wrapped)
  // a wrap_info with a token.
  absl::StatusOr<LoginResult> Send(client::Client& client, const json::object& body);
  absl::StatusOr<LoginResult> LoginAppRole(client::Client& client);

  AuthMethod method_;
  std::string secret_id_;  // the last secret id read (approle)
};

// What goes into `sink` for `token`: the token itself, or with the sink's wrap_ttl the
// wrap_info JSON (client::WrapInfoJson) of sys/wrapping/wrap {"token": token}, asked with the
// token itself (each call makes a new single-use wrapping token).
absl::StatusOr<std::string> SinkContent(client::Client& client, const FileSink& sink,
                                        const std::string& token);

// Writes `content` to the sink (atomic replace, the sink's mode).
absl::Status WriteSink(const FileSink& sink, const std::string& content);

}  // namespace strongroom::agent
