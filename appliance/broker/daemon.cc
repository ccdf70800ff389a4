#include "appliance/broker/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "appliance/broker/cluster.h"
#include "appliance/broker/config.h"
#include "appliance/broker/ipc_server.h"
#include "appliance/broker/key_commands.h"
#include "appliance/broker/telemetry.h"
#include "appliance/broker/tls_key.h"
#include "appliance/broker/tls_sign_server.h"
#include "appliance/core/core.h"
#include "appliance/engines/raft_snapshot.h"
#include "appliance/engines/registry.h"
#include "appliance/raft/raft_storage.h"
#include "appliance/storage/rocksdb_storage.h"
#include "appliance/tls/certificates.h"
#include "audit/keys.h"
#include "base/log.h"
#include "sandbox/broker_filter.h"
#include "sandbox/capabilities.h"
#include "sandbox/spawner.h"

extern char** environ;

namespace strongroom::broker {
namespace {

constexpr char kVersion[] = "0.1.0";
constexpr char kDefaultSoftHsm[] = "/usr/lib/softhsm/libsofthsm2.so";

struct Flags {
  std::string config_path;
  bool dev = false;
  std::string dev_root_token_id;
  std::string dev_listen_address = "127.0.0.1:8200";
  bool help = false;
  bool version = false;
  bool audit_public_key = false;
  KeyCommand keys;           // -tls-*, -cluster-*
  std::string raft_recover;  // peers file (raft_recover.h)
};

const char kUsage[] =
    "Usage: strongroomd -config=FILE\n"
    "       strongroomd -dev [-dev-root-token-id=ID] [-dev-listen-address=ADDR]\n"
    "       strongroomd -config=FILE -audit-public-key\n"
    "       strongroomd -config=FILE [-tls-generate-key] [-tls-self-signed-cert=OUT.pem]\n"
    "                   [-tls-csr=OUT.pem] [-tls-cert-hosts=HOST,...]\n"
    "       strongroomd -config=FILE [-cluster-generate-key] [-cluster-csr=OUT.pem]\n"
    "                   [-cluster-cert-hosts=HOST,...]\n"
    "       strongroomd -config=FILE -raft-recover=PEERS.json\n"
    "\n"
    "strongroom: an HSM-backed secrets appliance with Vault's HTTP API.\n"
    "\n"
    "  -config=FILE              server configuration (HCL, like Vault's server config)\n"
    "  -dev                      development server: throwaway SoftHSM2 token and data in a\n"
    "                            temporary directory, initialised and unsealed, secret/ mounted\n"
    "                            as KV v2, plain HTTP; everything is removed on exit\n"
    "  -dev-root-token-id=ID     root token to create in dev mode (default: random)\n"
    "  -dev-listen-address=ADDR  dev listener address (default 127.0.0.1:8200)\n"
    "  -audit-public-key          print the audit public key (PEM) from the token and exit;\n"
    "                            auditors verify the audit log with it (strongroom-audit)\n"
    "  -tls-generate-key          create the listener's TLS key (ECDSA P-256, tls_key_label)\n"
    "                            in the token, refusing if it exists; prints its public key\n"
    "  -tls-self-signed-cert=OUT  write a self-signed certificate (1 year) for the token's TLS\n"
    "                            key, signed by the token, to OUT\n"
    "  -tls-csr=OUT               write a certificate signing request for the key to OUT\n"
    "  -tls-cert-hosts=LIST       IP addresses and DNS names for the certificate or request\n"
    "                            (comma-separated; default 127.0.0.1,localhost)\n"
    "  -cluster-generate-key      create the cluster port's key (ECDSA P-256, storage \"raft\"\n"
    "                            cluster_key_label) in the token, refusing if it exists\n"
    "  -cluster-csr=OUT           write a certificate signing request for the cluster key to\n"
    "                            OUT, naming node_id and the host of cluster_addr\n"
    "  -cluster-cert-hosts=LIST   more IP addresses and DNS names for that request\n"
    "  -raft-recover=PEERS       lost quorum: make the members in PEERS (Vault's peers.json)\n"
    "                            the Raft configuration, then start; refused while a majority\n"
    "                            of the current configuration is reachable\n"
    "  -version                  print the version\n"
    "Flags may be written with one or two dashes, and with '=' or a space before the value.\n";

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) a.erase(0, 1);
    if (a.empty() || a[0] != '-') {
      if (a == "server") continue;  // `strongroomd server -dev` reads like Vault's CLI
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", argv[i], "\""));
    }
    std::string name = a.substr(1), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto need_value = [&]() -> absl::Status {
      if (has_value) return absl::OkStatus();
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("flag -", name, " needs a value"));
      value = argv[++i];
      return absl::OkStatus();
    };
    if (name == "config") {
      if (auto s = need_value(); !s.ok()) return s;
      f.config_path = value;
    } else if (name == "dev") {
      f.dev = !has_value || value == "true" || value == "1";
    } else if (name == "dev-root-token-id") {
      if (auto s = need_value(); !s.ok()) return s;
      f.dev_root_token_id = value;
    } else if (name == "dev-listen-address") {
      if (auto s = need_value(); !s.ok()) return s;
      f.dev_listen_address = value;
    } else if (name == "help" || name == "h") {
      f.help = true;
    } else if (name == "version") {
      f.version = true;
    } else if (name == "audit-public-key") {
      f.audit_public_key = true;
    } else if (name == "tls-generate-key") {
      f.keys.tls_generate_key = true;
    } else if (name == "tls-self-signed-cert") {
      if (auto s = need_value(); !s.ok()) return s;
      f.keys.tls_self_signed_cert = value;
    } else if (name == "tls-csr") {
      if (auto s = need_value(); !s.ok()) return s;
      f.keys.tls_csr = value;
    } else if (name == "tls-cert-hosts") {
      if (auto s = need_value(); !s.ok()) return s;
      f.keys.tls_cert_hosts = value;
    } else if (name == "cluster-generate-key") {
      f.keys.cluster_generate_key = true;
    } else if (name == "cluster-csr") {
      if (auto s = need_value(); !s.ok()) return s;
      f.keys.cluster_csr = value;
    } else if (name == "cluster-cert-hosts") {
      if (auto s = need_value(); !s.ok()) return s;
      f.keys.cluster_cert_hosts = value;
    } else if (name == "raft-recover") {
      if (auto s = need_value(); !s.ok()) return s;
      f.raft_recover = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag -", name));
    }
  }
  if (!f.help && !f.version && f.dev == !f.config_path.empty()) {
    return absl::InvalidArgumentError("give either -config=FILE or -dev");
  }
  if (f.audit_public_key && f.config_path.empty()) {
    return absl::InvalidArgumentError("-audit-public-key needs -config=FILE");
  }
  if (!f.raft_recover.empty() && f.config_path.empty()) {
    return absl::InvalidArgumentError("-raft-recover needs -config=FILE");
  }
  if (f.keys.Tls() && f.config_path.empty()) {
    return absl::InvalidArgumentError("the -tls-* commands need -config=FILE");
  }
  if (f.keys.Cluster() && f.config_path.empty()) {
    return absl::InvalidArgumentError("the -cluster-* commands need -config=FILE");
  }
  if (f.keys.Cluster() && f.keys.Tls()) {
    return absl::InvalidArgumentError("give the -tls-* and the -cluster-* commands separately");
  }
  return f;
}

// The main loop's part in Raft, every tick; each step bounded, and retried at the next tick
// until it succeeds (never latched):
// - sys/step-down, and a leader sealed by sys/seal, hand the leadership on (HandOver);
// - a node back with Raft state starts its core once it has caught up with the cluster;
// - a node that leads but is not the active node for its term reloads its tables (a standby's
//   mounts, policies, tokens and audit devices are as old as its last unseal) once it has
//   applied the whole log, unless it is sealed by request, and then serves as the active node.
void TendCluster(core::Core& core, ClusterNode& cluster) {
  cluster.RefreshRefused();  // removed node ids and pinned certificates, for the cluster port
  cluster.AskRefusedSets();  // a caught-up member's, when this node's may be old
  cluster.HandOver();
  cluster.TendStandby();  // the tables a standby answers its own reads with (cluster.h)
  if (core.awaiting_cluster()) {
    // Before the barrier: SetActive ties the active term to the term seen here (a leadership
    // lost and won again meanwhile is reloaded for at a later tick).
    const bool leading = cluster.BecameLeader();
    bool as_leader = false;
    if (!cluster.CaughtUp(absl::Seconds(2), &as_leader)) return;
    LogInfo("raft: caught up with the cluster; reading its state");
    cluster.JoinCaughtUp();
    core.Start();
    if (core.awaiting_cluster()) return;  // storage unreadable: logged; tried again
    // Caught up as the leader: its tables are current already.
    if (leading && as_leader && core.initialized()) cluster.SetActive(true);
    return;
  }
  if (!cluster.BecameLeader() || !core.initialized() || core.sealed_by_request()) return;
  if (!cluster.CaughtUp(absl::Seconds(10))) {
    LogWarn("raft: this node leads but has not applied the cluster's log yet; retrying");
    return;
  }
  LogInfo("raft: this node is the leader now; reloading as the active node");
  (void)core.SealNow("reloading as the active node");
  core.Start();
  cluster.SetActive(true);
}

absl::StatusOr<int> Listen(const std::string& address, std::string* bound) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("bad listener address \"", address, "\""));
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listener address \"", address, "\": ", gai_strerror(rc)));
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    std::string err = strerror(errno);
    freeaddrinfo(res);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", err));
  }
  freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char buf[INET6_ADDRSTRLEN] = {};
  uint16_t p = 0;
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    p = ntohs(s6->sin6_port);
    *bound = absl::StrCat("[", buf, "]:", p);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
    p = ntohs(s4->sin_port);
    *bound = absl::StrCat(buf, ":", p);
  }
  return fd;
}

// systemd's readiness protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET. A no-op outside a
// Type=notify service. The protocol is a stable interface; no library is needed for it.
void NotifySystemd(const std::string& state) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = strlen(path);
  if (len >= sizeof addr.sun_path) return;
  memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
             addr_len) < 0) {
    LogWarn("sd_notify: %s", strerror(errno));
  }
  close(fd);
}

// The unprivileged user and group workers change to (strongroomd has root, or CAP_SETUID and
// CAP_SETGID): never root, never the broker's own uid.
absl::StatusOr<std::pair<uid_t, gid_t>> WorkerIds(const ServerConfig& config) {
  std::vector<char> buf(16384);
  passwd pw;
  passwd* found = nullptr;
  getpwnam_r(config.worker_user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr && !config.worker_user_set) {
    LogWarn(
        "worker user \"%s\" does not exist; workers run as \"nobody\" (create the user or set "
        "worker_user)",
        config.worker_user);
    getpwnam_r("nobody", &pw, buf.data(), buf.size(), &found);
  }
  if (found == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker_user \"", config.worker_user, "\" does not exist"));
  }
  if (found->pw_uid == 0) {
    return absl::FailedPreconditionError("worker_user must not be root");
  }
  if (found->pw_uid == getuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker_user \"", found->pw_name,
        "\" is the user strongroomd runs as; workers need a user of their own (a worker could "
        "otherwise signal the broker)"));
  }
  return std::make_pair(found->pw_uid, found->pw_gid);
}

std::string WorkerBinary() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "strongroomd";
  std::string dir = self.substr(0, self.rfind('/'));
  for (std::string candidate :
       {dir + "/strongroom-worker", dir + "/../libexec/strongroom/strongroom-worker"}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return dir + "/strongroom-worker";
}

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }

void RemoveTree(const std::string& dir) {
  nftw(dir.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

// Dev mode: a throwaway SoftHSM2 token in a temporary directory.
absl::StatusOr<ServerConfig> PrepareDev(const Flags& flags, std::string* dev_dir) {
  char tmpl[] = "/tmp/strongroom-dev-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  *dev_dir = tmpl;
  const std::string tokens = *dev_dir + "/tokens";
  mkdir(tokens.c_str(), 0700);
  const std::string conf = *dev_dir + "/softhsm2.conf";
  {
    std::ofstream c(conf);
    c << "directories.tokendir = " << tokens << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  }
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  const std::string pin = core::RandomHex(8), so_pin = core::RandomHex(8);
  const std::string pin_file = *dev_dir + "/pin";
  {
    std::ofstream p(pin_file);
    p << pin << "\n";
  }
  chmod(pin_file.c_str(), 0600);
  std::vector<std::string> args = {
      "softhsm2-util", "--init-token", "--free", "--label", "strongroom-dev", "--pin", pin,
      "--so-pin",      so_pin};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "softhsm2-util", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return absl::UnavailableError("softhsm2-util --init-token failed (is softhsm2 installed?)");
  }
  ServerConfig c;
  c.listener.address = flags.dev_listen_address;
  c.listener.tls_disable = true;
  c.storage.path = *dev_dir + "/data";
  c.seal.lib = kDefaultSoftHsm;
  c.seal.token_label = "strongroom-dev";
  c.seal.pin = "file://" + pin_file;
  return c;
}

void PrintDevBanner(const std::string& addr, const core::InitResult& init) {
  std::string unseal = absl::Base64Escape(absl::string_view(
      reinterpret_cast<const char*>(init.recovery_keys[0].data()), init.recovery_keys[0].size()));
  std::cout
      << "==> strongroom server started in development mode! Log data will stream in below:\n\n"
      << "WARNING! dev mode is enabled! In this mode, strongroom runs with a throwaway SoftHSM2\n"
      << "token and data directory that are removed on exit, and serves plain HTTP.\n\n"
      << "You may need to set the following environment variables:\n\n"
      << "    $ export VAULT_ADDR='http://" << addr << "'\n\n"
      << "The recovery key and root token are displayed below in case you want to\n"
      << "seal/unseal strongroom or re-authenticate.\n\n"
      << "Unseal Key: " << unseal << "\n"
      << "Root Token: " << init.root_token << "\n\n"
      << "Development mode should NOT be used in production installations!\n"
      << std::endl;
}

}  // namespace

int DaemonMain(int argc, char** argv) {
  SetLogRole("broker");
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::cerr << "strongroomd: " << flags.status().message() << "\n\n" << kUsage;
    return 2;
  }
  if (flags->help) {
    std::cout << kUsage;
    return 0;
  }
  if (flags->version) {
    std::cout << "strongroomd " << kVersion << " (Vault API 1.19)\n";
    return 0;
  }

  // The broker holds the keyring: never dumpable, no core files.
  prctl(PR_SET_DUMPABLE, 0);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);

  std::string dev_dir;
  absl::StatusOr<ServerConfig> config =
      flags->dev ? PrepareDev(*flags, &dev_dir) : LoadConfigFile(flags->config_path);
  auto cleanup_dev = [&] {
    if (!dev_dir.empty()) RemoveTree(dev_dir);
  };
  if (flags->dev && !dev_dir.empty()) {
    LogInfo("dev mode: throwaway SoftHSM2 token and data in %s (removed on exit)", dev_dir);
  }
  if (!config.ok()) {
    LogError("%s", config.status().message());
    std::cerr << "strongroomd: " << config.status().message() << "\n";
    cleanup_dev();
    return 1;
  }
  LogLevel level;
  if (ParseLogLevel(config->log_level, &level)) SetLogLevel(level);
  if (flags->audit_public_key) return PrintAuditPublicKey(*config);
  if (flags->keys.Tls()) return RunTlsCommands(*config, flags->keys);
  if (flags->keys.Cluster()) return RunClusterKeyCommands(*config, flags->keys);

  // Signals are taken synchronously by the main loop; every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string bound;
  auto listen_fd = Listen(config->listener.address, &bound);
  if (!listen_fd.ok()) {
    LogError("%s", listen_fd.status().message());
    cleanup_dev();
    return 1;
  }

  ipc::WorkerSettings settings;
  settings.set_max_request_bytes(config->listener.max_request_size);
  settings.set_max_header_bytes(config->listener.max_header_bytes);
  settings.set_idle_timeout_ms(static_cast<uint32_t>(config->listener.http_idle_timeout_s * 1000));
  settings.set_read_timeout_ms(static_cast<uint32_t>(config->listener.http_read_timeout_s * 1000));
  settings.set_read_header_timeout_ms(
      static_cast<uint32_t>(config->listener.http_read_header_timeout_s * 1000));
  settings.set_max_json_depth(config->listener.max_json_depth);
  settings.set_max_json_string_value_length(config->listener.max_json_string_value_length);
  settings.set_max_json_object_entry_count(config->listener.max_json_object_entry_count);
  settings.set_max_json_array_element_count(config->listener.max_json_array_element_count);
  settings.set_max_request_json_memory(config->listener.max_request_json_memory);
  settings.set_max_request_json_strings(config->listener.max_request_json_strings);
  settings.set_max_connections(config->listener.max_connections_per_worker);
  settings.set_tls_min_version(config->listener.tls_min_version);
  // With tls_key_label the key stays in the token and no key file is read: the workers get the
  // certificate chain only and have each handshake signed through their signing channel.
  const bool tls_key_in_token =
      !config->listener.tls_disable && !config->listener.tls_key_label.empty();
  std::string tls_leaf_spki;
  if (!config->listener.tls_disable) {
    auto cert = ReadTextFile(config->listener.tls_cert_file);
    if (!cert.ok()) {
      LogError("TLS: %s", cert.status().message());
      cleanup_dev();
      return 1;
    }
    settings.set_tls_cert_chain_pem(*cert);
    if (tls_key_in_token) {
      auto spki = tls::LeafPublicKeyDer(*cert);
      if (!spki.ok()) {
        LogError("TLS: %s: %s", config->listener.tls_cert_file, spki.status().message());
        cleanup_dev();
        return 1;
      }
      tls_leaf_spki = *std::move(spki);
      settings.set_tls_key_in_broker(true);
    } else {
      auto key = ReadTextFile(config->listener.tls_key_file);
      if (!key.ok()) {
        LogError("TLS: %s", key.status().message());
        cleanup_dev();
        return 1;
      }
      settings.set_tls_key_pem(*key);
    }
  }

  // The spawner (sandbox/spawner.h) is forked now, before storage and the token are opened: it
  // takes the listener, starts the workers and restarts them; the broker never execs.
  const int workers = config->workers > 0
                          ? config->workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // Each worker counts only its own connections (they share no state): the per-address limit is
  // split between them.
  settings.set_max_connections_per_address(std::max<uint32_t>(
      1, config->listener.max_connections_per_address / static_cast<uint32_t>(workers)));
  // Workers run under worker_user, never the broker's uid, whenever strongroomd may change ids:
  // as root, or (the systemd unit) as the service user with CAP_SETUID and CAP_SETGID, which the
  // spawner keeps for the workers and the broker drops below.
  std::vector<std::string> worker_args;
  uid_t worker_uid = 0;
  const bool root = geteuid() == 0;
  if (root || sandbox::HasSetIdCapabilities()) {
    auto ids = WorkerIds(*config);
    if (!ids.ok()) {
      LogError("%s", ids.status().message());
      cleanup_dev();
      return 1;
    }
    worker_args = {absl::StrCat("--uid=", ids->first), absl::StrCat("--gid=", ids->second)};
    worker_uid = ids->first;
    LogInfo("workers run as uid %d, gid %d (worker_user \"%s\")", static_cast<int>(ids->first),
            static_cast<int>(ids->second), config->worker_user);
  } else {
    LogWarn(
        "workers run under strongroomd's own uid %d (neither root nor CAP_SETUID and "
        "CAP_SETGID, as in a non-root container): only their seccomp filter keeps a compromised "
        "worker from signalling the broker (docs/threat-model.md)",
        static_cast<int>(getuid()));
  }
  auto spawner =
      sandbox::Spawner::Start(WorkerBinary(), *listen_fd, workers, worker_args, worker_uid);
  if (!spawner.ok()) {
    LogError("%s", spawner.status().message());
    cleanup_dev();
    return 1;
  }
  if (!root) {
    // Still single-threaded: the capabilities were for the spawner only.
    if (absl::Status s = sandbox::DropAllCapabilities(); !s.ok()) {
      LogError("cannot drop the broker's capabilities: %s", s.message());
      spawner->get()->Stop();
      cleanup_dev();
      return 1;
    }
  }

  // Storage: RocksDB alone, or RocksDB as the state machine of a Raft cluster.
  const bool raft = config->storage.type == "raft";
  if (!flags->raft_recover.empty() && !raft) {
    LogError("raft recovery: -raft-recover needs storage \"raft\"");
    spawner->get()->Stop();
    cleanup_dev();
    return 1;
  }
  // The seal (and so the token) exists before storage: a cluster port's key in the token is
  // needed to start Raft. Safe after the spawner's fork: this process never forks again.
  auto seal = std::make_unique<core::Pkcs11Seal>(SealConfigFrom(*config));
  core::Pkcs11Seal* seal_ptr = seal.get();  // owned by core, which outlives every use below
  std::unique_ptr<storage::RocksDbStorage> single;
  std::unique_ptr<ClusterNode> cluster;
  storage::Storage* physical = nullptr;
  if (raft) {
    ClusterOptions co;
    co.node_id = NodeId(config->storage.node_id);
    co.api_addr = config->api_addr;
    co.cluster_addr = std::string(
        absl::StripPrefix(absl::StripPrefix(config->cluster_addr, "https://"), "http://"));
    co.path = config->storage.path;
    co.tls = {config->storage.cluster_ca_file, config->storage.cluster_cert_file,
              config->storage.cluster_key_file, nullptr};
    if (!config->storage.cluster_key_label.empty()) {
      // The node's cluster identity lives in the token: no key file to copy.
      std::string how;
      auto key = LoadClusterKey(*seal_ptr, SealConfigFrom(*config), config->storage, &how);
      if (!key.ok()) {
        LogError("raft: %s", key.status().message());
        spawner->get()->Stop();
        cleanup_dev();
        return 1;
      }
      co.tls.key = *std::move(key);
      LogInfo("raft: cluster key \"%s\" in the token, %s: handshakes are signed by the token",
              config->storage.cluster_key_label, how);
    } else {
      LogWarn(
          "raft: the cluster key is a file (cluster_key_file): whoever copies it is this node "
          "on the cluster port; keep it in the token instead (cluster_key_label, "
          "docs/operations.md)");
    }
    co.retry_join = config->storage.retry_join;
    if (!flags->raft_recover.empty()) {
      auto peers = ReadPeersFile(flags->raft_recover);
      if (!peers.ok()) {
        LogError("raft recovery: %s", peers.status().message());
        spawner->get()->Stop();
        cleanup_dev();
        return 1;
      }
      co.recover = std::move(*peers);
    }
    co.join_token_file = config->storage.join_token_file;
    co.json_limits = IpcServer::JsonLimitsFor(settings);
    auto node = ClusterNode::Start(std::move(co));
    if (!node.ok()) {
      LogError("raft: %s", node.status().message());
      spawner->get()->Stop();
      cleanup_dev();
      return 1;
    }
    cluster = std::move(*node);
    physical = cluster->storage();
  } else {
    auto opened = storage::RocksDbStorage::Open(config->storage.path);
    if (!opened.ok()) {
      LogError("%s", opened.status().message());
      cleanup_dev();
      return 1;
    }
    single = std::move(*opened);
    physical = single.get();
  }

  {
    // sys/storage/raft/snapshot: a consistent scan of the store (engines/raft_snapshot.h).
    engines::SnapshotStore snapshots;
    snapshots.physical = physical;
    if (auto* replicated = dynamic_cast<raft::RaftStorage*>(physical); replicated != nullptr) {
      snapshots.scan = [replicated](const auto& each) -> absl::Status {
        if (absl::Status s = replicated->Barrier(); !s.ok()) return s;
        return replicated->Scan(each);
      };
    } else {
      snapshots.scan = [store = single.get()](const auto& each) { return store->Scan(each); };
    }
    engines::SetSnapshotStore(std::move(snapshots));
  }

  core::CoreOptions options;
  options.version = "1.19.0+strongroom";
  options.api_addr = config->api_addr;
  options.engines = engines::EngineTable();
  options.default_lease_ttl = config->default_lease_ttl_s;
  options.max_lease_ttl = config->max_lease_ttl_s;
  options.audit.node_id = NodeId(config->storage.node_id);
  if (cluster && !cluster->incarnation().empty()) {
    // Each incarnation of a Raft node writes chains of its own: a node re-added under its old
    // node_id with a new data directory starts new ones (core/audit.h, AuditSettings).
    options.audit.node_id = absl::StrCat(options.audit.node_id, ".", cluster->incarnation());
  }
  options.audit.per_node_state = raft;
  options.cluster = cluster.get();
  options.storage_type = raft ? "raft" : "rocksdb";
  options.audit.checkpoint_entries = config->audit_checkpoint_entries;
  options.audit.checkpoint_interval = absl::Seconds(config->audit_checkpoint_interval_s);
  options.transit_max_encryptions = config->transit_max_encryptions_per_version;
  options.transit_min_auto_rotate_period = config->transit_min_auto_rotate_period_s;
  options.telemetry = TelemetryOptionsFor(*config, HostName());
  options.sanitized_config = [sanitized = SanitizedConfig(*config)]() { return sanitized; };
  sandbox::Spawner* spawner_ptr = spawner->get();
  metrics::CollectorHandle worker_metrics = CollectWorkerMetrics(spawner_ptr);
  options.worker_status = [spawner_ptr]() {
    core::json::object o;
    const sandbox::Supervisor::Stats st = spawner_ptr->stats();
    o["configured"] = st.configured;
    o["running"] = st.running;
    o["spawner_alive"] = !spawner_ptr->Gone();
    o["restarts"] = st.restarts;
    o["seccomp_kills"] = st.seccomp_kills;
    o["crash_loop"] = st.crash_loop;
    return o;
  };
  core::Core core(std::move(options), physical, std::move(seal));

  IpcServer ipc(&core, settings, 8, [spawner_ptr](pid_t pid) { spawner_ptr->Kill(pid); });
  if (cluster) {
    cluster->Attach(&core, seal_ptr);
    ClusterNode* node = cluster.get();
    ipc.SetForwarder([node](const ipc::Request& r) { return node->MaybeForward(r); });
  }
  // Declared after core: destroyed (threads joined) before the token goes away.
  TlsSignServer tls_signer([spawner_ptr](pid_t pid) { spawner_ptr->Kill(pid); });
  const sandbox::Supervisor::OnStarted add_worker = [&ipc, &tls_signer, tls_key_in_token](
                                                        int index, int fd, int sign_fd, pid_t pid) {
    ipc.AddWorker(index, fd, pid);
    if (tls_key_in_token) {
      tls_signer.AddWorker(index, sign_fd, pid);
    } else {
      close(sign_fd);  // the worker's end then reads EOF; it has no use for it
    }
  };
  spawner_ptr->Poll(add_worker);

  // The core's PKCS#11 use starts now, after the first workers exist (the spawner forked them;
  // this process never forks, so PKCS#11 state never crosses a fork).
  if (cluster && cluster->HasState()) {
    // A member's state machine is rebuilt at each start and may be empty or behind until it has
    // caught up with the cluster (no leader may be reachable yet: the others may be restarting
    // too). Until then it knows nothing of the cluster's state: it stays sealed (and answers as
    // initialised), and the main loop starts the core once it has caught up.
    core.WaitForCluster();
  } else {
    core.Start();
  }
  std::atomic<bool> stop_joining{false};
  std::thread joiner;
  if (cluster) {
    joiner = std::thread([&cluster, &stop_joining] { cluster->RetryJoin(stop_joining); });
  }

  if (tls_key_in_token) {
    // The TLS key is needed even while sealed (sys/health, sys/unseal over https), so a missing
    // or unusable key, or a certificate for another key, stops the daemon here.
    absl::Status tls_ready = [&]() -> absl::Status {
      auto token = seal_ptr->OpenToken();
      if (!token.ok()) {
        return absl::Status(token.status().code(),
                            absl::StrCat("cannot open the PKCS#11 token for the TLS key: ",
                                         token.status().message()));
      }
      auto key = TokenTlsKey::Find(*token, config->listener.tls_key_label);
      if (!key.ok()) return key.status();
      if (key->public_key_der() != tls_leaf_spki) {
        return absl::FailedPreconditionError(absl::StrCat(
            "tls_cert_file ", config->listener.tls_cert_file,
            " is not a certificate for the TLS key \"", config->listener.tls_key_label,
            "\" in the token (make one with strongroomd -config=FILE -tls-self-signed-cert=OUT "
            "or -tls-csr=OUT)"));
      }
      tls_signer.SetSigner(
          [tls_key = *key](std::span<const uint8_t> digest) { return tls_key.SignDigest(digest); });
      LogInfo("TLS key \"%s\" in token \"%s\": handshakes are signed by the token", key->label(),
              (*token)->label());
      return absl::OkStatus();
    }();
    if (!tls_ready.ok()) {
      LogError("TLS: %s", tls_ready.message());
      spawner_ptr->Stop();
      cleanup_dev();
      return 1;
    }
  }

  if (flags->dev) {
    core::InitRequest ir;
    ir.recovery_shares = 1;
    ir.recovery_threshold = 1;
    ir.root_token_id = flags->dev_root_token_id;
    auto init = core.Initialize(ir);
    absl::Status mounted = init.ok() ? absl::OkStatus() : init.status();
    if (mounted.ok()) {
      core::MountEntry secret;
      secret.path = "secret/";
      secret.type = "kv";
      secret.description = "key/value secret storage";
      secret.options["version"] = "2";
      mounted = core.Mount(secret);
    }
    if (!mounted.ok()) {
      LogError("dev mode set-up failed: %s", mounted.message());
      spawner_ptr->Stop();
      cleanup_dev();
      return 1;
    }
    PrintDevBanner(bound, *init);
  }
  // From here on the broker cannot exec, fork, ptrace or touch the kernel (broker_filter.h).
  if (absl::Status s = sandbox::InstallBrokerFilter(); !s.ok()) {
    LogError("cannot install the broker's seccomp filter: %s", s.message());
    spawner_ptr->Stop();
    cleanup_dev();
    return 1;
  }
  // Logged last: tools (and tests) take this line as "ready".
  LogInfo("strongroomd %s: %d workers, API on %s://%s", kVersion, workers,
          config->listener.tls_disable ? "http" : "https", bound);
  // READY=1 means "the API answers", sealed or not, as Vault sends it: a new server must serve
  // sys/init before it can ever be unsealed, and a sealed one must serve sys/health and unseal
  // requests, so waiting for "unsealed" would have systemd kill a server that works as
  // designed. STATUS= says which state it is in and follows every change (docs/operations.md).
  const auto seal_state = [&core] {
    return core.awaiting_cluster() ? "sealed (waiting for the Raft cluster)"
           : !core.initialized()   ? "not initialised (waiting for sys/init)"
           : core.sealed()         ? "sealed"
                                   : "unsealed";
  };
  std::string notified_state = seal_state();
  NotifySystemd(absl::StrCat("READY=1\nSTATUS=serving on ", bound, "; ", notified_state,
                             "\nMAINPID=", getpid()));

  int exit_code = 0;
  auto next_tick = std::chrono::steady_clock::now();
  for (;;) {
    timespec ts{0, 100 * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("received %s; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      NotifySystemd("STOPPING=1");
      break;
    }
    if (sig == SIGHUP) {
      LogInfo("received SIGHUP; reopening audit files");
      core.audit().Reopen();
    }
    spawner_ptr->Poll(add_worker);
    if (!spawner_ptr->alive()) {
      // Without the spawner no worker is restarted and the listener is gone with it; the broker
      // cannot fork a new one (its seccomp filter forbids fork and exec). Stop visibly with a
      // failure status: systemd (Restart=on-failure) and Kubernetes restart the whole daemon.
      LogError(
          "the spawner died; stopping with status 1 so that the service manager restarts "
          "strongroomd");
      NotifySystemd("STATUS=the spawner died; stopping\nSTOPPING=1");
      exit_code = 1;
      break;
    }
    if (cluster) {
      if (std::string failure = cluster->StorageFailure(); !failure.empty()) {
        // Its state machine no longer follows the log: nothing it holds may be served. Stop
        // with status 1: the others elect a leader, and the service manager restarts this
        // node, which rebuilds its state machine from its log (or fails to start, loudly,
        // while its disk is still broken).
        LogError(
            "raft: this node's state machine failed (%s); stopping with status 1 so that the "
            "cluster elects another leader and the service manager restarts strongroomd",
            failure);
        NotifySystemd("STATUS=the Raft state machine failed; stopping\nSTOPPING=1");
        // The requests in flight fail at once now (their storage calls do): let their answers
        // reach the workers before the workers stop (bounded). The shutdown below seals.
        if (!ipc.Drain(absl::Seconds(5))) LogWarn("requests still in flight are cut off");
        exit_code = 1;
        break;
      }
      TendCluster(core, *cluster);
    }
    engines::TendRestores(core);  // a restored snapshot: reload from it
    if (std::string state = seal_state(); state != notified_state) {
      NotifySystemd(absl::StrCat("STATUS=serving on ", bound, "; ", state));
      notified_state = std::move(state);
    }
    core.audit().Tick();  // time-based audit checkpoints
    core.Periodic();      // engines' background work (Transit auto-rotation)
    if (std::chrono::steady_clock::now() >= next_tick) {
      core.Tick();  // expired tokens
      next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    }
  }
  stop_joining.store(true);
  if (joiner.joinable()) joiner.join();
  spawner_ptr->Stop();
  ipc.Stop();
  tls_signer.Stop();
  (void)core.SealNow("sealed for shutdown");
  engines::SetSnapshotStore({});
  cluster.reset();  // Raft stops (and no member's call reaches the core) before the core goes
  cleanup_dev();
  LogInfo("stopped");
  return exit_code;
}

}  // namespace strongroom::broker
