#include "cli/agent/agent_command.h"

#include <netdb.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/agent/agent.h"
#include "cli/agent/config.h"
#include "cli/agent/files.h"
#include "client/http.h"
#include "sandbox/agent_filter.h"

namespace strongroom::agent {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

constexpr char kUsage[] =
    "Usage: strongroom agent -config=FILE [-config=FILE ...] [options]\n"
    "\n"
    "Runs Vault Agent's auto-auth, token sinks and templates against a strongroom (or Vault)\n"
    "server. The configuration is Vault Agent's, in HCL or JSON (docs/secret-delivery.md).\n"
    "\n"
    "  -config=FILE        a configuration file; may be repeated (later files add to earlier)\n"
    "  -config-env=NAME    the configuration, base64-encoded, in environment variable NAME\n"
    "                      (what the injector gives its agent containers: VAULT_CONFIG)\n"
    "  -exit-after-auth    exit 0 after the first login and full render\n"
    "  -log-level=LEVEL    debug, info (default), warn or error\n"
    "\n"
    "Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,\n"
    "VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME override the vault stanza, as for Vault Agent.\n";

int Fail(absl::string_view message) {
  LogError("%s", message);
  return 1;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// The vault stanza, then the environment over it (Vault's precedence), into a client config.
client::Config ClientConfig(const VaultSettings& v) {
  client::Config c;
  c.address = v.address;
  c.tls.ca_file = v.ca_cert;
  c.tls.ca_path = v.ca_path;
  c.tls.client_cert_file = v.client_cert;
  c.tls.client_key_file = v.client_key;
  c.tls.server_name = v.tls_server_name;
  c.tls.skip_verify = v.tls_skip_verify;
  auto over = [](std::string& field, const char* name) {
    if (std::string e = Env(name); !e.empty()) field = e;
  };
  over(c.address, "VAULT_ADDR");
  over(c.tls.ca_file, "VAULT_CACERT");
  over(c.tls.ca_path, "VAULT_CAPATH");
  over(c.tls.client_cert_file, "VAULT_CLIENT_CERT");
  over(c.tls.client_key_file, "VAULT_CLIENT_KEY");
  over(c.tls.server_name, "VAULT_TLS_SERVER_NAME");
  if (std::string e = Env("VAULT_SKIP_VERIFY"); !e.empty()) {
    bool skip = false;
    ParseGoBool(e, &skip);  // as before: anything but a true value verifies
    c.tls.skip_verify = skip;
  }
  if (c.address.empty()) c.address = "https://127.0.0.1:8200";
  return c;
}

// Resolves the server's name once before the filter: glibc loads the NSS modules it needs
// (which maps code, which the filter forbids afterwards) on the first lookup.
void WarmResolver(const std::string& address) {
  auto url = http::ParseUrl(address, "address", /*allow_http=*/true);
  if (!url.ok() || url->is_ip) return;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(url->host.c_str(), nullptr, &hints, &list) == 0) freeaddrinfo(list);
}

}  // namespace

int Main(int argc, char** argv) {
  SetLogRole("agent");
  std::vector<std::string> files, envs;
  bool exit_after_auth = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (absl::StartsWith(Av(arg), "--")) arg.remove_prefix(1);
    auto value = [&](std::string_view flag, std::string* out) {
      if (!absl::StartsWith(Av(arg), Av(flag)) || arg.size() <= flag.size() ||
          arg[flag.size()] != '=') {
        return false;
      }
      *out = std::string(arg.substr(flag.size() + 1));
      return true;
    };
    std::string v;
    if (value("-config", &v)) {
      files.push_back(v);
    } else if (value("-config-env", &v)) {
      envs.push_back(v);
    } else if (value("-log-level", &v)) {
      LogLevel level;
      if (!ParseLogLevel(v, &level)) return Fail(absl::StrCat("unknown log level \"", v, "\""));
      SetLogLevel(level);
    } else if (arg == "-exit-after-auth" || arg == "-exit-after-auth=true") {
      exit_after_auth = true;
    } else if (arg == "-h" || arg == "-help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "strongroom agent: unknown argument \"%s\"\n\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (files.empty() && envs.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  // The token lives in this process: no core dumps, no ptrace by same-uid processes, and no
  // privilege gained through exec (the templates' commands).
  if (prctl(PR_SET_DUMPABLE, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Fail("cannot harden the process (prctl)");
  }
  if (geteuid() == 0) LogWarn("running as root: the agent needs no privilege; run it as a user");

  AgentConfig config;
  std::vector<std::pair<std::string, std::string>> documents;  // origin, text
  for (const std::string& f : files) {
    auto text = ReadFileBounded(f, kMaxConfigBytes);
    if (!text.ok()) return Fail(absl::StrCat("config: ", text.status().message()));
    documents.emplace_back(f, std::move(*text));
  }
  for (const std::string& name : envs) {
    const std::string encoded = Env(name.c_str());
    std::string decoded;
    if (encoded.empty())
      return Fail(absl::StrCat("config: environment variable ", name, " is empty"));
    if (encoded.size() > kMaxConfigBytes * 4 / 3 + 4 ||
        !absl::Base64Unescape(Av(encoded), &decoded)) {
      return Fail(absl::StrCat("config: ", name, " does not hold base64"));
    }
    documents.emplace_back(absl::StrCat("$", name), std::move(decoded));
  }
  for (auto& [origin, text] : documents) {
    auto parsed = ParseConfig(text, origin);
    if (!parsed.ok()) return Fail(parsed.status().message());
    if (absl::Status s = MergeConfig(config, std::move(*parsed)); !s.ok()) return Fail(s.message());
  }
  if (exit_after_auth) config.exit_after_auth = true;
  if (absl::Status s = ValidateConfig(config); !s.ok()) return Fail(s.message());
  for (const std::string& w : config.warnings) LogWarn("config: %s", w);

  auto client = client::Client::Create(ClientConfig(config.vault));
  if (!client.ok()) return Fail(absl::StrCat("vault: ", client.status().message()));
  // The runner is forked now, before any thread and before a token exists; then the filter.
  std::optional<CommandRunner> runner;
  std::vector<RunnerCommand> commands;
  for (TemplateSpec& t : config.templates) {
    if (t.command.empty()) continue;
    t.command_index = commands.size();
    commands.push_back({t.command, t.command_timeout});
  }
  if (!commands.empty()) {
    auto started = CommandRunner::Start(std::move(commands));
    if (!started.ok()) return Fail(started.status().message());
    runner.emplace(std::move(*started));
  }
  WarmResolver(client->config().address);
  if (absl::Status s = sandbox::InstallAgentFilter(); !s.ok()) {
    return Fail(absl::StrCat("sandbox: ", s.message()));
  }
  auto agent = Agent::Create(std::move(config), std::move(*client), std::move(runner));
  if (!agent.ok()) return Fail(agent.status().message());
  absl::Status s = (*agent)->Run();
  if (!s.ok()) return Fail(s.message());
  return 0;
}

}  // namespace strongroom::agent
