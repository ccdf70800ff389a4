// `strongroom csi-provider`: flags in the Vault CSI provider's -name=value style (its names where
// it has the setting), then the gRPC server until SIGTERM or SIGINT. `-check` is the DaemonSet's
// probe: one Version call on the socket.
#include "cli/csi/csi_command.h"

#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/csi/kube_token.h"
#include "cli/csi/provider.h"
#include "cli/csi/server.h"
#include "cli/csi/token_cache.h"

namespace strongroom::csi {
namespace {

constexpr char kDefaultEndpoint[] = "unix:///var/run/secrets-store-csi-providers/strongroom.sock";

constexpr char kUsage[] =
    "Usage: strongroom csi-provider [flags]\n"
    "\n"
    "Serves the Secrets Store CSI Driver's provider API (v1alpha1.CSIDriverProvider) on a Unix\n"
    "socket: SecretProviderClasses with the Vault provider's parameters mount strongroom (or\n"
    "Vault) secrets as files. Settings come from, in ascending order of precedence, the\n"
    "environment, these flags and the SecretProviderClass.\n"
    "\n"
    "Flags:\n"
    "  -endpoint=ENDPOINT       the socket (default unix:///var/run/secrets-store-csi-providers/\n"
    "                           strongroom.sock; a plain absolute path works too)\n"
    "  -socket-group=GID        give the socket this group (the driver's)\n"
    "  -socket-mode=MODE        0600 (default) or 0660 (with -socket-group)\n"
    "  -vault-addr=URL          default Vault address (VAULT_ADDR; default "
    "https://127.0.0.1:8200)\n"
    "  -vault-mount=PATH        default Kubernetes auth mount (default kubernetes)\n"
    "  -vault-namespace=NS      default namespace header (VAULT_NAMESPACE)\n"
    "  -vault-tls-ca-cert=FILE  CA bundle for Vault (VAULT_CACERT)\n"
    "  -vault-tls-ca-directory=DIR\n"
    "                           hashed CA directory for Vault (VAULT_CAPATH)\n"
    "  -vault-tls-server-name=NAME\n"
    "                           name to verify in Vault's certificate (VAULT_TLS_SERVER_NAME)\n"
    "  -vault-tls-client-cert=FILE -vault-tls-client-key=FILE\n"
    "                           client certificate for Vault (VAULT_CLIENT_CERT, "
    "VAULT_CLIENT_KEY)\n"
    "  -vault-tls-skip-verify=BOOL\n"
    "                           do not verify Vault's certificate (VAULT_SKIP_VERIFY; not for\n"
    "                           production)\n"
    "  -cache-size=N            Vault tokens kept, one per pod (default 1000; 0: log in on every\n"
    "                           mount)\n"
    "  -hmac-key-file=FILE      key of the object versions (at least 32 bytes; a Secret shared by\n"
    "                           every node). Without it a random key per process: versions then\n"
    "                           change once when the provider restarts\n"
    "  -kubernetes-token-requests=BOOL\n"
    "                           request a pod's token from the Kubernetes API when the driver\n"
    "                           passed none (default false; needs the in-cluster configuration or\n"
    "                           the three flags below, and RBAC create on serviceaccounts/token)\n"
    "  -kubernetes-host=URL -kubernetes-ca-cert=FILE -kubernetes-token-file=FILE\n"
    "                           the Kubernetes API (default: the in-cluster configuration)\n"
    "  -max-concurrent-mounts=N calls served at once (default 16)\n"
    "  -mount-timeout=DURATION  the longest one mount may take, checked between its requests\n"
    "                           (default 2m)\n"
    "  -max-mount-answers-bytes=N\n"
    "                           the Vault answers one mount may hold at once (default 25165824)\n"
    "  -log-level=LEVEL         debug, info, warn or error (default info)\n"
    "  -check                   call Version on the socket and exit 0 if it answers (a probe)\n"
    "  -version                 print the version and exit\n";

int UsageError(std::string_view message) {
  std::fprintf(stderr, "strongroom csi-provider: %.*s\n\n%s", static_cast<int>(message.size()),
               message.data(), kUsage);
  return 2;
}

int Fatal(std::string_view message) {
  LogError("%s", std::string(message));
  std::fprintf(stderr, "strongroom csi-provider: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return 1;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

int Main(int argc, char** argv) {
  static constexpr std::string_view kFlags[] = {
      "endpoint",
      "socket-group",
      "socket-mode",
      "vault-addr",
      "vault-mount",
      "vault-namespace",
      "vault-tls-ca-cert",
      "vault-tls-ca-directory",
      "vault-tls-server-name",
      "vault-tls-client-cert",
      "vault-tls-client-key",
      "vault-tls-skip-verify",
      "cache-size",
      "hmac-key-file",
      "kubernetes-token-requests",
      "kubernetes-host",
      "kubernetes-ca-cert",
      "kubernetes-token-file",
      "max-concurrent-mounts",
      "mount-timeout",
      "max-mount-answers-bytes",
      "log-level",
  };
  std::map<std::string, std::string> flags;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "-help" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-version" || arg == "--version") {
      std::printf("%s %s (API %s)\n", kRuntimeName, STRONGROOM_VERSION, kApiVersion);
      return 0;
    }
    if (arg == "-check" || arg == "--check") {
      check = true;
      continue;
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
    flags[name] = value;
  }
  // A flag, else the environment variable, else the default.
  auto setting = [&](const char* flag, const char* env, std::string fallback = "") {
    if (auto it = flags.find(flag); it != flags.end()) return it->second;
    if (env != nullptr && !Env(env).empty()) return Env(env);
    return fallback;
  };

  SetLogRole("csi-provider");
  LogLevel level = LogLevel::kInfo;
  if (!ParseLogLevel(setting("log-level", nullptr, "info"), &level)) {
    return UsageError("-log-level must be debug, info, warn or error");
  }
  SetLogLevel(level);

  auto socket_path = SocketPathFromEndpoint(setting("endpoint", nullptr, kDefaultEndpoint));
  if (!socket_path.ok()) return UsageError(Sv(socket_path.status().message()));
  if (check) {
    auto version = CheckVersion(*socket_path, absl::Seconds(5));
    if (!version.ok()) {
      std::fprintf(stderr, "strongroom csi-provider: %s\n",
                   std::string(version.status().message()).c_str());
      return 1;
    }
    std::printf("%s\n", version->c_str());
    return 0;
  }

  ServerOptions server_options;
  server_options.socket_path = *socket_path;
  if (flags.count("socket-group")) {
    uint32_t gid = 0;
    if (!absl::SimpleAtoi(Av(flags["socket-group"]), &gid) || gid > 0x7fffffff) {
      return UsageError("-socket-group must be a numeric group id");
    }
    server_options.socket_group = static_cast<gid_t>(gid);
  }
  if (flags.count("socket-mode")) {
    const std::string& m = flags["socket-mode"];
    if (m == "0600" || m == "600") {
      server_options.socket_mode = 0600;
    } else if (m == "0660" || m == "660") {
      if (!server_options.socket_group) return UsageError("-socket-mode=0660 needs -socket-group");
      server_options.socket_mode = 0660;
    } else {
      return UsageError("-socket-mode must be 0600 or 0660");
    }
  }
  if (flags.count("max-concurrent-mounts")) {
    int n = 0;
    if (!absl::SimpleAtoi(Av(flags["max-concurrent-mounts"]), &n) || n < 1 || n > 256) {
      return UsageError("-max-concurrent-mounts must be from 1 to 256");
    }
    server_options.max_threads = n;
  }

  ProviderConfig config;
  config.vault_address = setting("vault-addr", "VAULT_ADDR", config.vault_address);
  config.auth_mount = setting("vault-mount", nullptr, config.auth_mount);
  config.vault_namespace = setting("vault-namespace", "VAULT_NAMESPACE");
  config.tls.ca_file = setting("vault-tls-ca-cert", "VAULT_CACERT");
  config.tls.ca_path = setting("vault-tls-ca-directory", "VAULT_CAPATH");
  config.tls.server_name = setting("vault-tls-server-name", "VAULT_TLS_SERVER_NAME");
  config.tls.client_cert_file = setting("vault-tls-client-cert", "VAULT_CLIENT_CERT");
  config.tls.client_key_file = setting("vault-tls-client-key", "VAULT_CLIENT_KEY");
  if (config.tls.client_cert_file.empty() != config.tls.client_key_file.empty()) {
    return UsageError("-vault-tls-client-cert and -vault-tls-client-key go together");
  }
  if (std::string v = setting("vault-tls-skip-verify", "VAULT_SKIP_VERIFY"); !v.empty()) {
    if (!ParseGoBool(v, &config.tls.skip_verify)) {
      return UsageError("-vault-tls-skip-verify must be true or false");
    }
  }
  if (auto url = http::ParseUrl(config.vault_address, "-vault-addr", /*allow_http=*/true);
      !url.ok()) {
    return UsageError(Sv(url.status().message()));
  }
  if (flags.count("mount-timeout")) {
    auto nanos = ParseGoDurationNanos(flags["mount-timeout"]);
    if (!nanos.ok() || *nanos <= 0) return UsageError("-mount-timeout must be a duration");
    config.mount_deadline = absl::Nanoseconds(*nanos);
  }
  if (flags.count("max-mount-answers-bytes") &&
      (!absl::SimpleAtoi(Av(flags["max-mount-answers-bytes"]), &config.max_answers_bytes) ||
       config.max_answers_bytes < 1024 || config.max_answers_bytes > (uint64_t{1} << 30))) {
    return UsageError("-max-mount-answers-bytes must be from 1024 to 1073741824");
  }
  size_t cache_size = 1000;
  if (flags.count("cache-size") &&
      (!absl::SimpleAtoi(Av(flags["cache-size"]), &cache_size) || cache_size > 1000000)) {
    return UsageError("-cache-size must be from 0 to 1000000");
  }

  std::string hmac_key;
  if (std::string file = setting("hmac-key-file", nullptr); !file.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    hmac_key = std::string(absl::StripTrailingAsciiWhitespace(ss.str()));
    if (!in || hmac_key.size() < 32 || hmac_key.size() > 4096) {
      return Fatal(absl::StrCat("-hmac-key-file ", file,
                                ": cannot be read or does not hold 32 to 4096 bytes"));
    }
  } else {
    hmac_key.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(hmac_key.data()), 32) != 1) {
      return Fatal("cannot draw a random HMAC key");
    }
    LogWarn(
        "no -hmac-key-file: object versions use a key of this process and change once when "
        "the provider restarts (the driver then rewrites unchanged files)");
  }

  std::unique_ptr<TokenRequester> requester;
  // Off unless asked for: a requested token would go to the class's vaultAddress (review).
  bool token_requests = false;
  if (std::string v = setting("kubernetes-token-requests", nullptr);
      !v.empty() && !ParseGoBool(v, &token_requests)) {
    return UsageError("-kubernetes-token-requests must be true or false");
  }
  if (token_requests) {
    std::optional<KubeApiConfig> kube;
    if (flags.count("kubernetes-host")) {
      kube = KubeApiConfig{};
      kube->host = flags["kubernetes-host"];
      kube->ca_file = setting("kubernetes-ca-cert", nullptr);
      kube->token_file =
          setting("kubernetes-token-file", nullptr, absl::StrCat(kServiceAccountDir, "/token"));
      if (auto url = http::ParseUrl(kube->host, "-kubernetes-host", /*allow_http=*/false);
          !url.ok()) {
        return UsageError(Sv(url.status().message()));
      }
    } else {
      kube = InClusterConfig();
    }
    if (kube) {
      LogInfo("pods without a driver-supplied token: tokens are requested from %s", kube->host);
      requester = std::make_unique<TokenRequester>(std::move(*kube));
    } else {
      LogInfo(
          "no Kubernetes API configuration: only tokens the driver passes (tokenRequests) "
          "are used");
    }
  }

  // The socket is created 0600 (then chmod'ed as asked); the provider writes no other file.
  umask(0177);
  // SIGTERM and SIGINT are taken by sigwait below: blocked before gRPC starts its threads, so
  // that none of them gets the signal.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  TokenCache cache(cache_size);
  Provider provider(config, std::move(hmac_key), &cache, requester.get());
  auto server = CsiServer::Start(server_options, &provider);
  if (!server.ok()) return Fatal(Sv(server.status().message()));
  LogInfo("serving %s on unix://%s (mode %04o%s); default Vault %s, auth mount %s, token cache %d",
          kApiVersion, *socket_path, server_options.socket_mode,
          server_options.socket_group ? absl::StrCat(", group ", *server_options.socket_group)
                                      : std::string(),
          config.vault_address, config.auth_mount, static_cast<int>(cache_size));
  int sig = 0;
  sigwait(&stop, &sig);
  LogInfo("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::Seconds(5));
  LogInfo("stopped");
  return 0;
}

}  // namespace strongroom::csi
