// auto_auth: one login with the configured method, and the token sinks.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "cli/agent/config.h"
#include "client/client.h"

namespace strongroom::agent {

// Credentials read from files (JWT, role and secret ids, a token) are bounded at this size.
inline constexpr size_t kMaxCredentialBytes = 64 * 1024;

// Logs in with `method` (kubernetes: the JWT at token_path, read afresh every time as the
// kubelet rotates it; approle: role_id_file_path and secret_id_file_path; token_file: the token
// at token_file_path, checked with lookup-self). Does not set the client's token.
//
// AppRole's secret id is single-use material: as Vault Agent does, its file is removed
// (unless remove_secret_id_file_after_reading is false), but only after a login with it
// succeeded, and the secret id is kept in memory for the next logins; a new file replaces it.
class Authenticator {
 public:
  explicit Authenticator(AuthMethod method) : method_(std::move(method)) {}
  absl::StatusOr<client::Auth> Login(client::Client& client);
  const AuthMethod& method() const { return method_; }

 private:
  absl::StatusOr<client::Auth> LoginAppRole(client::Client& client);

  AuthMethod method_;
  std::string secret_id_;  // the last secret id read (approle)
};

// Writes the token to every sink (atomic replace, the sink's mode). Stops at the first failure.
absl::Status WriteSinks(const std::vector<FileSink>& sinks, const std::string& token);

}  // namespace strongroom::agent
