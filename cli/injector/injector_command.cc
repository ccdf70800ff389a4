// `strongroom injector`: flags in the Vault injector's -name=value style, then the HTTPS server
// with Mutate() as its handler. One log line per admission (namespace/pod and the outcome).
#include "cli/injector/injector_command.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "appliance/core/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/injector/annotations.h"
#include "cli/injector/mutate.h"
#include "cli/injector/webhook_server.h"

namespace strongroom::injector {
namespace {

constexpr char kUsage[] =
    "Usage: strongroom injector -tls-cert-file=FILE -tls-key-file=FILE -vault-address=URL\n"
    "                           -agent-image=IMAGE [flags]\n"
    "\n"
    "Serves the mutating admission webhook (POST /mutate, GET /health/ready) that adds\n"
    "strongroom agent containers to pods annotated vault.hashicorp.com/agent-inject: \"true\".\n"
    "\n"
    "Flags:\n"
    "  -listen=ADDR            address to listen on (default :8080; [::1]:8443 for IPv6)\n"
    "  -tls-cert-file=FILE     PEM certificate chain; read again when it changes\n"
    "  -tls-key-file=FILE      PEM private key; read again when it changes\n"
    "  -vault-address=URL      the strongroom (Vault) address the agents use\n"
    "  -agent-image=IMAGE      image of the agent containers (runs /usr/bin/strongroom agent);\n"
    "                          -vault-image is the same flag\n"
    "  -vault-auth-path=PATH   Kubernetes auth mount path (default auth/kubernetes)\n"
    "  -default-template=map|json\n"
    "                          template for secrets without agent-inject-template (default map)\n"
    "  -run-as-user=UID        agent user id (default 100)\n"
    "  -run-as-group=GID       agent group id (default 1000)\n"
    "  -cpu-request=Q -cpu-limit=Q -mem-request=Q -mem-limit=Q\n"
    "                          agent resources (defaults 250m, 500m, 64Mi, 128Mi)\n"
    "  -static-secret-render-interval=DURATION\n"
    "                          how often the agents render static secrets (agent default 5m)\n"
    "  -exit-on-retry-failure=BOOL\n"
    "                          agents exit when a template keeps failing (default true)\n"
    "  -max-connections=N      concurrent connections (default 128); at the cap a new one\n"
    "                          replaces the oldest one still handshaking or idle\n"
    "  -max-connections-per-peer=N\n"
    "                          the same, per client IP address (default 32)\n"
    "  -max-body-bytes-in-flight=SIZE\n"
    "                          request bodies held at once, e.g. 32Mi (default; at least 3Mi);\n"
    "                          a request over it is answered 503 with Retry-After\n"
    "  -log-level=LEVEL        debug, info, warn or error (default info)\n";

int UsageError(std::string_view message) {
  std::fprintf(stderr, "strongroom injector: %.*s\n\n%s", static_cast<int>(message.size()),
               message.data(), kUsage);
  return 2;
}

// ":8080", "127.0.0.1:8443", "[::1]:8443".
bool ParseListen(std::string_view v, std::string* host, uint16_t* port) {
  size_t colon = v.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view h = v.substr(0, colon);
  std::string_view p = v.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  uint32_t n = 0;
  if (p.empty() || p.size() > 5 || !absl::SimpleAtoi(Av(p), &n) || n > 65535) return false;
  *host = h.empty() ? "0.0.0.0" : std::string(h);
  *port = static_cast<uint16_t>(n);
  return true;
}

// A byte count: digits with an optional Ki, Mi or Gi suffix (as Kubernetes writes memory).
bool ParseBytes(std::string_view v, size_t* out) {
  uint64_t unit = 1;
  for (auto [suffix, u] : {std::pair<std::string_view, uint64_t>{"Ki", 1ull << 10},
                           {"Mi", 1ull << 20},
                           {"Gi", 1ull << 30}}) {
    if (v.size() > 2 && v.substr(v.size() - 2) == suffix) {
      v.remove_suffix(2);
      unit = u;
      break;
    }
  }
  uint64_t n = 0;
  if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(Av(v), &n)) {
    return false;
  }
  *out = static_cast<size_t>(n * unit);  // below 10^10 * 2^30 < 2^64
  return true;
}

}  // namespace

int Main(int argc, char** argv) {
  static constexpr std::string_view kFlags[] = {
      "listen",
      "tls-cert-file",
      "tls-key-file",
      "vault-address",
      "agent-image",
      "vault-image",
      "vault-auth-path",
      "default-template",
      "run-as-user",
      "run-as-group",
      "cpu-request",
      "cpu-limit",
      "mem-request",
      "mem-limit",
      "static-secret-render-interval",
      "exit-on-retry-failure",
      "max-connections",
      "max-connections-per-peer",
      "max-body-bytes-in-flight",
      "log-level",
  };
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "-help" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return UsageError(absl::StrCat("unexpected argument \"", Av(arg), "\""));
    }
    arg.remove_prefix(arg.size() > 2 && arg[1] == '-' ? 2 : 1);
    std::string name(arg.substr(0, arg.find('=')));
    bool known = false;
    for (std::string_view f : kFlags) known = known || f == name;
    if (!known) return UsageError(absl::StrCat("flag provided but not defined: -", name));
    std::string value;
    if (arg.find('=') != std::string_view::npos) {
      value = std::string(arg.substr(arg.find('=') + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return UsageError(absl::StrCat("flag needs an argument: -", name));
    }
    if (name == "vault-image") name = "agent-image";
    flags[name] = value;
  }
  auto flag = [&](const char* name, std::string fallback = "") {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  };

  SetLogRole("injector");
  LogLevel level = LogLevel::kInfo;
  if (!ParseLogLevel(flag("log-level", "info"), &level)) {
    return UsageError("-log-level must be debug, info, warn or error");
  }
  SetLogLevel(level);

  WebhookOptions options;
  if (!ParseListen(flag("listen", ":8080"), &options.host, &options.port)) {
    return UsageError("-listen must be HOST:PORT, :PORT or [IPV6]:PORT");
  }
  options.cert_file = flag("tls-cert-file");
  options.key_file = flag("tls-key-file");
  if (options.cert_file.empty() || options.key_file.empty()) {
    return UsageError("-tls-cert-file and -tls-key-file are required");
  }
  if (flags.count("max-connections")) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(Av(flags["max-connections"]), &n) || n == 0 || n > 65536) {
      return UsageError("-max-connections must be from 1 to 65536");
    }
    options.max_connections = n;
  }
  if (flags.count("max-connections-per-peer")) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(Av(flags["max-connections-per-peer"]), &n) || n == 0 || n > 65536) {
      return UsageError("-max-connections-per-peer must be from 1 to 65536");
    }
    options.max_connections_per_peer = n;
  }
  if (flags.count("max-body-bytes-in-flight")) {
    size_t n = 0;
    if (!ParseBytes(flags["max-body-bytes-in-flight"], &n) || n < options.max_body_bytes ||
        n > (size_t{4} << 30)) {
      return UsageError(
          "-max-body-bytes-in-flight must be a size from 3Mi to 4Gi (bytes, or with Ki, Mi, Gi)");
    }
    options.max_body_bytes_in_flight = n;
  }

  InjectorDefaults defaults;
  defaults.vault_address = flag("vault-address");
  if (std::string err = CheckVaultAddress(defaults.vault_address); !err.empty()) {
    return UsageError(absl::StrCat("-vault-address: ", err));
  }
  defaults.agent_image = flag("agent-image");
  if (std::string err = CheckImage(defaults.agent_image); !err.empty()) {
    return UsageError(absl::StrCat("-agent-image (required): ", err));
  }
  defaults.auth_path = flag("vault-auth-path", defaults.auth_path);
  if (std::string err = CheckAuthPath(defaults.auth_path); !err.empty()) {
    return UsageError(absl::StrCat("-vault-auth-path: ", err));
  }
  defaults.default_template = flag("default-template", defaults.default_template);
  if (defaults.default_template != "map" && defaults.default_template != "json") {
    return UsageError("-default-template must be map or json");
  }
  if (flags.count("run-as-user")) {
    if (std::string err = CheckUid(flags["run-as-user"], false, &defaults.run_as_user);
        !err.empty()) {
      return UsageError(absl::StrCat("-run-as-user: ", err));
    }
  }
  if (flags.count("run-as-group")) {
    if (std::string err = CheckUid(flags["run-as-group"], true, &defaults.run_as_group);
        !err.empty()) {
      return UsageError(absl::StrCat("-run-as-group: ", err));
    }
  }
  struct QuantityFlag {
    const char* name;
    std::string* target;
  };
  for (const QuantityFlag& q : {QuantityFlag{"cpu-request", &defaults.cpu_request},
                                QuantityFlag{"cpu-limit", &defaults.cpu_limit},
                                QuantityFlag{"mem-request", &defaults.mem_request},
                                QuantityFlag{"mem-limit", &defaults.mem_limit}}) {
    if (!flags.count(q.name)) continue;
    long double ignored = 0;
    const std::string& v = flags[q.name];
    if (!v.empty()) {
      if (std::string err = CheckQuantity(v, &ignored); !err.empty()) {
        return UsageError(absl::StrCat("-", q.name, ": ", err));
      }
    }
    *q.target = v;
  }
  if (flags.count("static-secret-render-interval")) {
    const std::string& v = flags["static-secret-render-interval"];
    if (std::string err = CheckGoDuration(v); !err.empty()) {
      return UsageError(absl::StrCat("-static-secret-render-interval: ", err));
    }
    defaults.static_secret_render_interval = v;
  }
  if (flags.count("exit-on-retry-failure")) {
    if (std::string err =
            CheckBool(flags["exit-on-retry-failure"], &defaults.exit_on_retry_failure);
        !err.empty()) {
      return UsageError(absl::StrCat("-exit-on-retry-failure: ", err));
    }
  }

  auto handler = [defaults](std::string_view body) {
    absl::StatusOr<MutationResult> result = Mutate(body, defaults);
    WebhookReply reply;
    if (!result.ok()) {
      LogInfo("admission: bad request: %s", result.status().message());
      reply.status = 400;
      reply.body = core::Serialize(
          boost::json::object{{"errors", boost::json::array{Sv(result.status().message())}}});
      return reply;
    }
    LogInfo("admission %s", result->log_line);
    reply.body = std::move(result->response);
    return reply;
  };
  absl::StatusOr<std::unique_ptr<WebhookServer>> server =
      WebhookServer::Create(options, std::move(handler));
  if (!server.ok()) {
    std::fprintf(stderr, "strongroom injector: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  LogInfo("listening on https://%s:%u (vault %s, agent image %s)", options.host, (*server)->port(),
          defaults.vault_address, defaults.agent_image);
  (*server)->Run(/*handle_signals=*/true);
  LogInfo("stopped");
  return 0;
}

}  // namespace strongroom::injector
