#include "cli/vault/command.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "cli/vault/paths.h"

namespace strongroom::vault {
namespace {

constexpr size_t kMaxInputBytes = 32 << 20;  // a file or stdin given as data
constexpr size_t kMaxTokenBytes = 64 << 10;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

absl::StatusOr<std::string> ReadInput(const std::string& path, size_t max) {
  int fd = path == "-" ? dup(STDIN_FILENO) : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("error reading ", path == "-" ? "stdin" : path, ": ", std::strerror(errno)));
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("error reading ", path, ": ", std::strerror(e)));
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat("error reading ", path == "-" ? "stdin" : path,
                                                     ": larger than ", max, " bytes"));
    }
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

void Context::AddFlags(FlagSet* flags, bool output) {
  flags->String("address", &address_);
  flags->String("ca-cert", &ca_cert_);
  flags->String("ca-path", &ca_path_);
  flags->String("client-cert", &client_cert_);
  flags->String("client-key", &client_key_);
  flags->String("tls-server-name", &tls_server_name_);
  flags->Bool("tls-skip-verify", &tls_skip_verify_);
  flags->String("namespace", &namespace_);
  flags->Bool("output-curl-string", &output_curl_string_);
  flags->Duration("wrap-ttl", &wrap_ttl_seconds_);
  if (output) {
    flags->String("format", &format_name_);
    flags->String("field", &field_);
  }
}

std::optional<int> Context::Parse(FlagSet* flags, const std::vector<std::string>& args,
                                  std::string_view usage) {
  if (absl::Status s = flags->Parse(args); !s.ok()) {
    if (absl::IsCancelled(s)) {
      Out(absl::StrCat(
          Av(usage),
          "\n\nHTTP options (and their environment variables):\n"
          "  -address=URL (VAULT_ADDR, default https://127.0.0.1:8200)\n"
          "  -ca-cert=FILE (VAULT_CACERT)  -ca-path=DIR (VAULT_CAPATH)\n"
          "  -client-cert=FILE (VAULT_CLIENT_CERT)  -client-key=FILE (VAULT_CLIENT_KEY)\n"
          "  -tls-server-name=NAME (VAULT_TLS_SERVER_NAME)  -tls-skip-verify (VAULT_SKIP_VERIFY)\n"
          "  -namespace=NS (VAULT_NAMESPACE)  -output-curl-string\n"
          "  -wrap-ttl=DURATION (VAULT_WRAP_TTL): the response wrapped in a single-use token\n"
          "Output options: -format=table|json|yaml (VAULT_FORMAT)  -field=NAME\n"
          "The token: VAULT_TOKEN, else the token helper file ~/.vault-token (strongroom login).\n"
          "Exit codes: 0 success, 1 usage or local error, 2 the server's error."));
      return kOk;
    }
    Err(Sv(s.message()));
    return kLocalError;
  }
  std::vector<std::string> late;
  for (const std::string& a : flags->args()) {
    if (a.size() > 1 && a[0] == '-') late.push_back(a);
  }
  if (!late.empty()) {
    Err(absl::StrCat(
        "Command flags must be provided before positional arguments. The following arguments "
        "will not be parsed as flags: [",
        absl::StrJoin(late, ","), "]"));
  }
  auto pick = [](std::string* value, const char* env) {
    if (value->empty()) *value = Env(env);
  };
  pick(&address_, "VAULT_ADDR");
  if (address_.empty()) address_ = "https://127.0.0.1:8200";
  pick(&ca_cert_, "VAULT_CACERT");
  pick(&ca_path_, "VAULT_CAPATH");
  pick(&client_cert_, "VAULT_CLIENT_CERT");
  pick(&client_key_, "VAULT_CLIENT_KEY");
  pick(&tls_server_name_, "VAULT_TLS_SERVER_NAME");
  pick(&namespace_, "VAULT_NAMESPACE");
  pick(&format_name_, "VAULT_FORMAT");
  if (!flags->Given("tls-skip-verify")) {
    if (std::string v = Env("VAULT_SKIP_VERIFY");
        !v.empty() && !ParseGoBool(v, &tls_skip_verify_)) {
      Err(absl::StrCat("VAULT_SKIP_VERIFY: invalid boolean \"", v, "\""));
      return kLocalError;
    }
  }
  // Vault's wrapping lookup: -wrap-ttl, else VAULT_WRAP_TTL (the client adds 5m for a write to
  // sys/wrapping/wrap when neither is set).
  if (wrap_ttl_seconds_ > 0) {
    wrap_ttl_ = absl::StrCat(wrap_ttl_seconds_, "s");
  } else if (std::string v = Env("VAULT_WRAP_TTL"); !v.empty() && !flags->Given("wrap-ttl")) {
    int64_t seconds = 0;
    if (absl::Status s = ParseDurationSeconds(v, &seconds); !s.ok()) {
      Err(absl::StrCat("VAULT_WRAP_TTL: ", s.message()));
      return kLocalError;
    }
    if (seconds > 0) wrap_ttl_ = absl::StrCat(seconds, "s");
  }
  auto format = ParseFormat(format_name_);
  if (!format.ok()) {
    Err(Sv(format.status().message()));
    return kLocalError;
  }
  format_ = *format;
  return std::nullopt;
}

std::string Context::TokenHelperPath() {
  std::string home = Env("HOME");
  if (home.empty()) {
    // No HOME (a cron job, a unit without one): the account's home directory.
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
        found->pw_dir != nullptr) {
      home = found->pw_dir;
    }
  }
  return absl::StrCat(home.empty() ? "." : home, "/.vault-token");
}

std::string Context::Token() const {
  if (std::string t = Env("VAULT_TOKEN"); !t.empty()) return t;
  auto stored = ReadInput(TokenHelperPath(), kMaxTokenBytes);
  if (!stored.ok()) return "";
  return std::string(absl::StripAsciiWhitespace(*stored));
}

absl::Status Context::StoreToken(std::string_view token) const {
  return WriteFileAtomic(TokenHelperPath(), token, 0600);
}

client::Client* Context::Client(bool with_token) {
  if (client_) return &*client_;
  client::Config config;
  config.address = address_;
  config.tls.ca_file = ca_cert_;
  config.tls.ca_path = ca_path_;
  config.tls.client_cert_file = client_cert_;
  config.tls.client_key_file = client_key_;
  config.tls.server_name = tls_server_name_;
  config.tls.skip_verify = tls_skip_verify_;
  config.namespace_ = namespace_;
  if (client_cert_.empty() != client_key_.empty()) {
    Local("-client-cert and -client-key go together");
    return nullptr;
  }
  auto c = client::Client::Create(std::move(config));
  if (!c.ok()) {
    Local(absl::StrCat("Error initializing client: ", c.status().message()));
    return nullptr;
  }
  client_.emplace(std::move(*c));
  if (with_token) client_->SetToken(Token());
  client_->SetWrapTtl(wrap_ttl_);
  if (output_curl_string_) client_->SetCurlSink(&curl_);
  return &*client_;
}

int Context::Remote(std::string_view what, const absl::Status& status) {
  if (client::Client::IsCurlPrinted(status)) {
    Out(curl_);
    return kOk;
  }
  Err(absl::StrCat(Av(what), ": ", status.message()));
  // Refused here before anything was sent (a path or header the client will not send): a local
  // error, as a bad argument.
  if (absl::IsInvalidArgument(status) && client::HttpStatusOf(status) == 0) return kLocalError;
  return kRemoteError;
}

std::optional<int> Context::ExpectArgs(const std::vector<std::string>& args, size_t min,
                                       size_t max) {
  if (args.size() < min) {
    return Local(absl::StrCat("Not enough arguments (expected ", min == max ? "" : "at least ", min,
                              ", got ", args.size(), ")"));
  }
  if (args.size() > max) {
    return Local(absl::StrCat("Too many arguments (expected ", min == max ? "" : "at most ", max,
                              ", got ", args.size(), ")"));
  }
  return std::nullopt;
}

int Context::Local(std::string_view message) {
  Err(message);
  return kLocalError;
}

void Context::Out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void Context::Err(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), err_);
  std::fputc('\n', err_);
  std::fflush(err_);
}

int Context::PrintField(const client::Secret& s, const json::object& data) {
  json::value value;
  bool found = false;
  auto take = [&](json::value v) {
    value = std::move(v);
    found = true;
  };
  const json::object* auth = nullptr;
  if (auto it = s.raw.find("auth"); it != s.raw.end() && it->value().is_object()) {
    auth = &it->value().as_object();
  }
  auto auth_field = [&](std::string_view k) -> json::value {
    auto it = auth->find(k);
    return it == auth->end() ? json::value() : it->value();
  };
  if (field_ == "refresh_interval" || field_ == "lease_duration") {
    take(s.lease_duration);
  } else if (field_ == "lease_id") {
    take(json::value(s.lease_id));
  } else if (field_ == "lease_renewable") {
    take(s.renewable);
  } else if (auth != nullptr && field_ == "token") {
    take(auth_field("client_token"));
  } else if (auth != nullptr && field_ == "token_accessor") {
    take(auth_field("accessor"));
  } else if (auth != nullptr && field_ == "token_duration") {
    take(auth_field("lease_duration"));
  } else if (auth != nullptr && field_ == "token_renewable") {
    take(auth_field("renewable"));
  } else if (auth != nullptr && (field_ == "token_policies" || field_ == "identity_policies" ||
                                 field_ == "policies")) {
    take(auth_field(field_));
  } else if (s.wrap_info && field_ == "wrapping_token") {
    take(json::value(s.wrap_info->token));
  } else if (s.wrap_info && field_ == "wrapping_accessor") {
    take(json::value(s.wrap_info->accessor));
  } else if (s.wrap_info && field_ == "wrapping_token_ttl") {
    take(s.wrap_info->ttl);
  } else if (s.wrap_info && field_ == "wrapping_token_creation_time") {
    take(json::value(s.wrap_info->creation_time));
  } else if (s.wrap_info && field_ == "wrapping_token_creation_path") {
    take(json::value(s.wrap_info->creation_path));
  } else if (s.wrap_info && field_ == "wrapped_accessor") {
    take(json::value(s.wrap_info->wrapped_accessor));
  } else if (auto it = data.find(field_); it != data.end()) {
    take(it->value());
  }
  if (!found || value.is_null()) {
    Err(absl::StrCat("Field \"", field_, "\" not present in secret"));
    return kLocalError;
  }
  std::string text = format_ == Format::kTable  ? GoValue(value)
                     : format_ == Format::kJson ? JsonIndent(value)
                                                : Yaml(value);
  std::fwrite(text.data(), 1, text.size(), out_);
  if (isatty(fileno(out_))) std::fputc('\n', out_);
  std::fflush(out_);
  return kOk;
}

int Context::OutputSecret(const client::Secret& s) {
  static const json::object kEmpty;
  if (!field_.empty()) return PrintField(s, s.data.is_object() ? s.data.as_object() : kEmpty);
  switch (format_) {
    case Format::kJson:
      WriteJson(out_, SecretValue(s), SecretOrder());
      break;
    case Format::kYaml:
      WriteYaml(out_, SecretValue(s));
      break;
    case Format::kTable: {
      if (std::string w = WarningsText(s.warnings); !w.empty()) {
        std::fwrite(w.data(), 1, w.size(), err_);
      }
      std::string table = SecretTable(s);
      if (!table.empty()) {
        table.pop_back();
        Out(table);
      }
      break;
    }
  }
  return kOk;
}

std::optional<int> Context::OutputIfWrapped(const client::Secret& s) {
  if (!s.wrap_info) return std::nullopt;
  return OutputSecret(s);
}

int Context::OutputData(const json::value& data, const JsonOrder& order) {
  switch (format_) {
    case Format::kJson:
      WriteJson(out_, data, order);
      break;
    case Format::kYaml:
      WriteYaml(out_, data);
      break;
    case Format::kTable: {
      std::string table = data.is_object() ? MapTable(data.as_object()) : GoValue(data) + "\n";
      if (!table.empty()) {
        table.pop_back();
        Out(table);
      }
      break;
    }
  }
  return kOk;
}

int Context::OutputList(const client::Secret& s) {
  json::value keys;
  if (s.data.is_object()) {
    if (auto it = s.data.as_object().find("keys"); it != s.data.as_object().end())
      keys = it->value();
  }
  if (format_ != Format::kTable) return OutputData(keys);
  if (std::string w = WarningsText(s.warnings); !w.empty())
    std::fwrite(w.data(), 1, w.size(), err_);
  std::vector<std::string> rows;
  if (keys.is_array()) {
    for (const json::value& k : keys.as_array()) rows.push_back(GoValue(k));
  }
  std::sort(rows.begin(), rows.end());
  rows.insert(rows.begin(), "Keys");
  std::string table = Table(rows, kDelim);
  table.pop_back();
  Out(table);
  return kOk;
}

absl::StatusOr<json::object> Context::ParseArgsData(const std::vector<std::string>& args) {
  json::object data;
  bool stdin_used = false;
  auto read = [&](const std::string& source) -> absl::StatusOr<std::string> {
    if (source == "-") {
      if (stdin_used) return absl::InvalidArgumentError("stdin can only be read once");
      stdin_used = true;
    }
    return ReadInput(source, kMaxInputBytes);
  };
  // "-" (stdin) or "@FILE": a JSON object whose fields are merged in.
  auto merge_json = [&](const std::string& source) -> absl::Status {
    auto in = read(source);
    if (!in.ok()) return in.status();
    auto parsed = core::ParseObject(*in);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Failed to parse JSON input: ", parsed.status().message()));
    }
    for (auto& kv : *parsed) data[kv.key()] = std::move(kv.value());
    return absl::OkStatus();
  };
  for (const std::string& arg : args) {
    if (arg.empty()) continue;
    if (arg == "-" || arg[0] == '@') {
      if (absl::Status s = merge_json(arg == "-" ? "-" : arg.substr(1)); !s.ok()) return s;
      continue;
    }
    size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid key/value pair \"", arg, "\": format must be key=value"));
    }
    std::string key = arg.substr(0, eq);
    std::string value = arg.substr(eq + 1);
    if (absl::StartsWith(value, "\\@")) {
      value.erase(0, 1);  // "\@..." is a literal "@..."
    } else if (value == "-" || absl::StartsWith(value, "@")) {
      auto in = read(value == "-" ? "-" : value.substr(1));
      if (!in.ok()) return in.status();
      value = std::move(*in);
    }
    auto it = data.find(key);
    if (it == data.end()) {
      data[key] = value;
    } else if (it->value().is_array()) {
      it->value().as_array().emplace_back(value);
    } else {
      json::array list{it->value(), json::value(value)};
      it->value() = std::move(list);
    }
  }
  return data;
}

}  // namespace strongroom::vault
