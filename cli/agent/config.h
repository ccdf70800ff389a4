// Vault Agent's configuration, as `strongroom agent` reads it (docs/secret-delivery.md, "The
// agent"): HCL, or JSON as Vault Agent accepts it (the injector generates JSON). Both forms of a
// stanza are read alike: `method "kubernetes" { ... }` and `method { type = "kubernetes" ... }`,
// `config { ... }` and `config = { ... }`, a JSON object or a list of them.
//
// A key strongroom does not know is an error naming it and its place; stanzas of Vault Agent
// that strongroom does not implement are errors naming them too (a silent skip would leave an
// operator believing, say, a listener was serving), except those that change nothing about what
// is delivered (telemetry, log settings), which are warnings.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::agent {

struct VaultSettings {
  std::string address;  // "" -> VAULT_ADDR, else https://127.0.0.1:8200
  std::string ca_cert, ca_path, client_cert, client_key, tls_server_name;
  bool tls_skip_verify = false;
};

struct AuthMethod {
  std::string type;        // kubernetes | approle | token_file
  std::string mount_path;  // default "auth/<type>"
  std::string namespace_;  // Vault Enterprise namespaces: refused unless empty
  // kubernetes: role, token_path; approle: role_id_file_path, secret_id_file_path,
  // remove_secret_id_file_after_reading; token_file: token_file_path
  std::map<std::string, std::string, std::less<>> config;
  absl::Duration min_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
  bool exit_on_err = false;
  // Vault Agent's method wrap_ttl: the login answer is response-wrapped by the server and only
  // its wrap_info goes to the (one) sink; the agent cannot use, renew or re-login the token.
  absl::Duration wrap_ttl = absl::ZeroDuration();
};

struct FileSink {
  std::string path;
  uint32_t mode = 0640;  // Vault's default
  // Vault Agent's sink wrap_ttl: the sink gets the wrap_info JSON of a wrapped copy of the
  // token (sys/wrapping/wrap {"token": ...}); the agent keeps using the token itself.
  absl::Duration wrap_ttl = absl::ZeroDuration();
};

struct TemplateSpec {
  std::string source;    // a file holding the template, or
  std::string contents;  // the template itself
  bool has_contents = false;
  std::string destination;        // required
  std::optional<uint32_t> perms;  // default: the existing file's, else 0644
  std::string command;            // run with /bin/sh -c after the file changed
  size_t command_index = 0;       // its number in the command runner (set at start)
  absl::Duration command_timeout = absl::Seconds(30);
  bool error_on_missing_key = false;
  bool create_dest_dirs = true;
  std::string left_delimiter = "{{", right_delimiter = "}}";
};

struct TemplateSettings {
  absl::Duration static_secret_render_interval = absl::Minutes(5);
  bool exit_on_retry_failure = false;
};

struct AgentConfig {
  VaultSettings vault;
  std::optional<AuthMethod> method;
  std::vector<FileSink> sinks;
  std::vector<TemplateSpec> templates;
  TemplateSettings template_config;
  bool exit_after_auth = false;
  std::string pid_file;
  std::vector<std::string> warnings;  // to log once at start
};

// Parses one configuration document. `origin` names it in errors ("agent.hcl").
absl::StatusOr<AgentConfig> ParseConfig(std::string_view text, std::string_view origin);

// Merges `next` into `into` as Vault Agent merges several -config files: scalars of the later
// file win when set, templates and sinks add up, one auto_auth method at most.
absl::Status MergeConfig(AgentConfig& into, AgentConfig next);

// Checks the whole (merged) configuration: templates need auto_auth, a destination, exactly
// one of source/contents; delimiters non-empty. A method wrap_ttl needs exactly one sink, without
// a wrap_ttl of its own (Vault's rule and errors), and no template (the agent never holds a
// usable token then), and is refused for token_file (there is no login to wrap).
absl::Status ValidateConfig(const AgentConfig& config);

}  // namespace strongroom::agent
