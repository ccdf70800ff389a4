// What every `strongroom` command that speaks to the server shares, as the `vault` CLI's
// BaseCommand: the HTTP flags and their environment variables, the token (VAULT_TOKEN, else the
// token helper file ~/.vault-token), the output flags, and Vault's exit codes:
//   0 success, 1 a local error (bad flags or arguments, unreadable file), 2 the server's error.
#pragma once

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/vault/flags.h"
#include "cli/vault/format.h"
#include "client/client.h"

namespace strongroom::vault {

inline constexpr int kOk = 0, kLocalError = 1, kRemoteError = 2;

class Context {
 public:
  Context(FILE* out, FILE* err) : out_(out), err_(err) {}

  // Registers -address, -ca-cert, -ca-path, -client-cert, -client-key, -tls-server-name,
  // -tls-skip-verify, -namespace, -output-curl-string, -wrap-ttl, and with `output` -format
  // and -field.
  void AddFlags(FlagSet* flags, bool output = true);
  // Parses args; on failure prints the error (and returns kLocalError). `usage` is printed for
  // -help.
  std::optional<int> Parse(FlagSet* flags, const std::vector<std::string>& args,
                           std::string_view usage);

  // The client, with the token unless `with_token` is false. Errors are printed (kLocalError).
  client::Client* Client(bool with_token = true);
  // The token: VAULT_TOKEN, else the token helper file. Empty when neither.
  std::string Token() const;
  // Stores a token in the token helper file (0600, atomic replace).
  absl::Status StoreToken(std::string_view token) const;
  static std::string TokenHelperPath();

  Format format() const { return format_; }
  const std::string& field() const { return field_; }

  // After a request failed: -output-curl-string's command (exit 0), else "<what>: <error>"
  // (exit 2).
  int Remote(std::string_view what, const absl::Status& status);
  int Local(std::string_view message);  // prints to stderr, returns kLocalError
  // Vault's argument count check: kLocalError with "Not enough arguments (expected 1, got 0)"
  // or "Too many ...", else nullopt.
  std::optional<int> ExpectArgs(const std::vector<std::string>& args, size_t min, size_t max);
  void Out(std::string_view text);  // stdout, with a newline
  void Err(std::string_view text);  // stderr, with a newline

  // OutputSecret / OutputData / OutputList, with -field handled (PrintRawField).
  // OutputSecret shows a wrapped response's wrapping_* rows.
  int OutputSecret(const client::Secret& s);
  // A wrapped response (-wrap-ttl, VAULT_WRAP_TTL) has no data to show the command's way:
  // OutputSecret (or -field) of it; nullopt when `s` is not wrapped.
  std::optional<int> OutputIfWrapped(const client::Secret& s);
  int OutputData(const json::value& data, const JsonOrder& order = {});
  int OutputList(const client::Secret& s);
  // The value of -field: a raw string (a newline only on a terminal) or, for json/yaml, the
  // value in that format. Looks at the secret's lease, token and wrapping fields
  // (wrapping_token, wrapping_accessor, ...), then in `data`.
  int PrintField(const client::Secret& s, const json::object& data);

  // KEY=VALUE arguments (Vault's parseArgsData): VALUE "@file" reads a file, "-" reads stdin;
  // a lone "-" argument is a JSON object on stdin. A repeated key becomes a list.
  absl::StatusOr<json::object> ParseArgsData(const std::vector<std::string>& args);

  FILE* out() const { return out_; }
  FILE* err() const { return err_; }

 private:
  FILE* out_;
  FILE* err_;
  std::string address_, ca_cert_, ca_path_, client_cert_, client_key_, tls_server_name_, namespace_,
      format_name_, field_;
  bool tls_skip_verify_ = false, output_curl_string_ = false;
  int64_t wrap_ttl_seconds_ = 0;
  std::string wrap_ttl_;  // X-Vault-Wrap-TTL for every request ("" none)
  Format format_ = Format::kTable;
  std::optional<client::Client> client_;
  std::string curl_;
};

// Reads a whole file or stdin ("-"), at most `max` bytes.
absl::StatusOr<std::string> ReadInput(const std::string& path, size_t max);

// One command: `words` names it ("kv", "get"); `run` gets the arguments after the words.
struct Command {
  std::vector<std::string_view> words;
  int (*run)(Context& ctx, const std::vector<std::string>& args);
  std::string_view synopsis;
};
const std::vector<Command>& BasicCommands();     // status, read, write, list, delete, patch, print
const std::vector<Command>& TokenCommands();     // login, token ...
const std::vector<Command>& KvCommands();        // kv ...
const std::vector<Command>& AdminCommands();     // secrets, auth, policy, audit
const std::vector<Command>& OperatorCommands();  // operator ...

// Runs the command named by argv (after "strongroom"); false if no command matches.
std::optional<int> Dispatch(int argc, char** argv);
// The top-level command names with their synopsis (empty for groups), for the usage text.
std::vector<std::pair<std::string, std::string_view>> TopLevel();

}  // namespace strongroom::vault
