#include "cli/injector/mutate.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "appliance/core/json.h"
#include "appliance/core/json_limits.h"
#include "base/strings.h"
#include "cli/injector/agent_check.h"

namespace strongroom::injector {
namespace {

namespace json = boost::json;

constexpr std::string_view kServiceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount";
// Where the Vault injector mounts a named projected token volume no app container mounts.
constexpr std::string_view kDefaultProjectedTokenPath =
    "/var/run/secrets/vault.hashicorp.com/serviceaccount";
constexpr std::string_view kCustomVolumePrefix = "vault-secrets-custom-";
// One admission's work and answer are bounded whatever the pod: every app and init container
// gets a mount per secret directory, so both counts are capped, and so is the patch.
constexpr size_t kMaxContainers = 64;  // app and init containers together
constexpr size_t kMaxSecretDirectories = 16;
constexpr size_t kMaxPatchBytes = 1 << 20;
constexpr size_t kMaxWarnings = 20;
constexpr size_t kMaxWarningBytes = 200;
constexpr size_t kMaxAnnotations = 4096;
// Kubernetes' limit on a pod's annotations, keys and values together (the apiserver refuses the
// pod after admission otherwise; checked here before any of them is read).
constexpr size_t kMaxAnnotationBytes = 256 * 1024;
constexpr size_t kMaxUidBytes = 128;

// A problem with the pod that refuses the admission (the message goes back to the user).
struct Refusal {
  std::string message;
};

// For log lines and warnings: printable ASCII only, bounded.
std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > max) out += "...";
  return out;
}

const json::object* ObjectAt(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_object() ? &it->value().get_object() : nullptr;
}

std::string_view StringAt(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  const json::string& s = it->value().get_string();
  return std::string_view(s.data(), s.size());
}

// An optional array member: absent or null is empty; anything else but an array refuses.
absl::Status ArrayAt(const json::object& o, std::string_view key, std::string_view where,
                     json::array* out) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    *out = json::array();
    return absl::OkStatus();
  }
  if (!it->value().is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(Av(where), ".", Av(key), " is not an array"));
  }
  *out = it->value().get_array();
  return absl::OkStatus();
}

json::object EmptyDirMemory(std::string_view name) {
  return json::object{{"name", name}, {"emptyDir", json::object{{"medium", "Memory"}}}};
}

json::object Mount(std::string_view name, std::string_view path, bool read_only) {
  json::object m{{"name", name}, {"mountPath", path}};
  if (read_only) m["readOnly"] = true;
  return m;
}

bool IsInjectedVolume(std::string_view name) {
  return name == kSecretsVolume || name == kHomeInitVolume || name == kHomeSidecarVolume ||
         name == kTlsVolume || name == kExtraSecretVolume ||
         name.substr(0, kCustomVolumePrefix.size()) == kCustomVolumePrefix;
}

bool IsInjectedContainer(std::string_view name) {
  return name == kInitContainerName || name == kSidecarName;
}

std::string_view NameOf(const json::value& v) {
  return v.is_object() ? StringAt(v.get_object(), "name") : std::string_view();
}

// The service-account token the agent logs in with: where it is mounted and the file in it.
struct TokenMount {
  std::string volume;
  std::string mount_path;
  std::string file = "token";
  std::string TokenPath() const { return absl::StrCat(mount_path, "/", file); }
};

absl::StatusOr<TokenMount> FindTokenMount(const InjectionSpec& spec, const json::array& containers,
                                          const json::array& volumes) {
  auto mounts_of = [](const json::value& c) -> const json::array* {
    if (!c.is_object()) return nullptr;
    auto it = c.get_object().find("volumeMounts");
    return it != c.get_object().end() && it->value().is_array() ? &it->value().get_array()
                                                                : nullptr;
  };
  if (!spec.service_account_token_volume_name.empty()) {
    // agent-service-account-token-volume-name: a projected volume with a serviceAccountToken
    // source; mounted where an app container mounts it, else at the Vault injector's path.
    const std::string& name = spec.service_account_token_volume_name;
    TokenMount t;
    t.volume = name;
    t.file.clear();
    for (const json::value& v : volumes) {
      if (NameOf(v) != name) continue;
      const json::object* projected = ObjectAt(v.get_object(), "projected");
      auto sources = projected ? projected->find("sources") : nullptr;
      if (sources != nullptr && sources != projected->end() && sources->value().is_array()) {
        for (const json::value& src : sources->value().get_array()) {
          const json::object* sat =
              src.is_object() ? ObjectAt(src.get_object(), "serviceAccountToken") : nullptr;
          if (sat != nullptr && !StringAt(*sat, "path").empty()) {
            t.file = std::string(StringAt(*sat, "path"));
            break;
          }
        }
      }
    }
    if (t.file.empty() || t.file.find("..") != std::string::npos || t.file[0] == '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "annotation vault.hashicorp.com/agent-service-account-token-volume-name: the pod has no "
          "projected volume ",
          name, " with a serviceAccountToken source"));
    }
    t.mount_path = std::string(kDefaultProjectedTokenPath);
    for (const json::value& c : containers) {
      if (const json::array* mounts = mounts_of(c)) {
        for (const json::value& m : *mounts) {
          if (NameOf(m) == name && m.is_object() &&
              !StringAt(m.get_object(), "mountPath").empty()) {
            t.mount_path = std::string(StringAt(m.get_object(), "mountPath"));
            return t;
          }
        }
      }
    }
    return t;
  }
  // The token Kubernetes mounts for the pod's service account: at its usual path first, else
  // the first mount whose path names a service account (as the Vault injector looks for it).
  for (bool exact : {true, false}) {
    for (const json::value& c : containers) {
      const json::array* mounts = mounts_of(c);
      if (mounts == nullptr) continue;
      for (const json::value& m : *mounts) {
        if (!m.is_object()) continue;
        std::string_view path = StringAt(m.get_object(), "mountPath");
        bool match = exact ? path == kServiceAccountPath
                           : path.find("serviceaccount") != std::string_view::npos;
        if (match && !NameOf(m).empty()) {
          TokenMount t;
          t.volume = std::string(NameOf(m));
          t.mount_path = std::string(path);
          return t;
        }
      }
    }
  }
  return absl::InvalidArgumentError(
      "the pod mounts no service-account token (is automountServiceAccountToken false?): the "
      "agent logs in to Vault with it");
}

json::object BuildResources(const Resources& r) {
  json::object limits, requests;
  if (!r.cpu_limit.empty()) limits["cpu"] = r.cpu_limit;
  if (!r.mem_limit.empty()) limits["memory"] = r.mem_limit;
  if (!r.ephemeral_limit.empty()) limits["ephemeral-storage"] = r.ephemeral_limit;
  if (!r.cpu_request.empty()) requests["cpu"] = r.cpu_request;
  if (!r.mem_request.empty()) requests["memory"] = r.mem_request;
  if (!r.ephemeral_request.empty()) requests["ephemeral-storage"] = r.ephemeral_request;
  json::object out;
  if (!limits.empty()) out["limits"] = std::move(limits);
  if (!requests.empty()) out["requests"] = std::move(requests);
  return out;
}

json::object SecurityContext(int64_t uid, int64_t gid) {
  return json::object{
      {"runAsUser", uid},
      {"runAsGroup", gid},
      {"runAsNonRoot", true},
      {"readOnlyRootFilesystem", true},
      {"allowPrivilegeEscalation", false},
      {"capabilities", json::object{{"drop", json::array{"ALL"}}}},
      {"seccompProfile", json::object{{"type", "RuntimeDefault"}}},
  };
}

// The secret volumes' mounts, as every app container and the agents get them: the pod's secret
// volume, then one per other secret-volume-path-NAME directory.
std::vector<std::pair<std::string, std::string>> SecretMounts(const InjectionSpec& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back(kSecretsVolume, spec.secret_volume_path);
  for (const SecretTemplate& t : spec.secrets) {
    bool seen = std::any_of(out.begin(), out.end(),
                            [&](const auto& m) { return m.second == t.mount_path; });
    if (!seen) {
      out.emplace_back(absl::StrCat(Av(kCustomVolumePrefix), out.size() - 1), t.mount_path);
    }
  }
  return out;
}

json::object AgentContainer(const InjectionSpec& spec, const TokenMount& token, int64_t uid,
                            bool init) {
  json::array mounts;
  mounts.push_back(Mount(init ? kHomeInitVolume : kHomeSidecarVolume, kHomePath, false));
  mounts.push_back(Mount(token.volume, token.mount_path, true));
  for (const auto& [name, path] : SecretMounts(spec)) mounts.push_back(Mount(name, path, false));
  if (!spec.extra_secret.empty())
    mounts.push_back(Mount(kExtraSecretVolume, kExtraSecretPath, true));
  if (!spec.tls_secret.empty()) mounts.push_back(Mount(kTlsVolume, kTlsPath, true));
  std::string config = AgentConfigJson(spec, token.TokenPath(), init);
  json::object c{
      {"name", init ? kInitContainerName : kSidecarName},
      {"image", spec.image},
      {"command", json::array{kAgentBinary, "agent", absl::StrCat("-config-env=", Av(kConfigEnv))}},
      {"env",
       json::array{
           json::object{{"name", "VAULT_LOG_LEVEL"}, {"value", spec.log_level}},
           json::object{{"name", "VAULT_LOG_FORMAT"}, {"value", spec.log_format}},
           json::object{{"name", kConfigEnv}, {"value", absl::Base64Escape(config)}},
       }},
      {"volumeMounts", std::move(mounts)},
      {"securityContext", SecurityContext(uid, spec.run_as_group)},
  };
  json::object resources = BuildResources(spec.resources);
  if (!resources.empty()) c["resources"] = std::move(resources);
  return c;
}

// Adds the secret mounts to one existing container, read-only; refuses a mount path it already
// uses.
absl::Status AddSecretMounts(json::value& container, const InjectionSpec& spec,
                             std::string_view where) {
  json::object& c = container.get_object();
  json::array mounts;
  if (auto it = c.find("volumeMounts"); it != c.end() && it->value().is_array()) {
    mounts = it->value().get_array();
  }
  for (const auto& [name, path] : SecretMounts(spec)) {
    for (const json::value& m : mounts) {
      if (m.is_object() && StringAt(m.get_object(), "mountPath") == path) {
        return absl::InvalidArgumentError(absl::StrCat(Av(where), " ",
                                                       Printable(NameOf(container), 63),
                                                       " already mounts a volume at ", path));
      }
    }
    // Read-only for the pod's containers: only the agents write there (an app container that
    // could write could swap a directory for a symlink and redirect the agent's writes).
    mounts.push_back(Mount(name, path, true));
  }
  c["volumeMounts"] = std::move(mounts);
  return absl::OkStatus();
}

// agent-inject-status: update: takes out what an earlier injection added.
void StripInjected(json::array& containers) {
  json::array kept;
  for (json::value& c : containers) {
    if (IsInjectedContainer(NameOf(c))) continue;
    if (c.is_object()) {
      json::object& o = c.get_object();
      if (auto it = o.find("volumeMounts"); it != o.end() && it->value().is_array()) {
        json::array mounts;
        for (json::value& m : it->value().get_array()) {
          if (!IsInjectedVolume(NameOf(m))) mounts.push_back(std::move(m));
        }
        it->value() = std::move(mounts);
      }
    }
    kept.push_back(std::move(c));
  }
  containers = std::move(kept);
}

absl::Status CheckNotInjected(const json::array& containers, const json::array& init_containers,
                              const json::array& volumes) {
  for (const json::array* list : {&containers, &init_containers}) {
    for (const json::value& c : *list) {
      if (IsInjectedContainer(NameOf(c))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the pod already has a container named ", Av(NameOf(c)),
            "; set vault.hashicorp.com/agent-inject-status to \"update\" to inject it again"));
      }
    }
  }
  for (const json::value& v : volumes) {
    if (IsInjectedVolume(NameOf(v))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the pod already has a volume named ", Printable(NameOf(v), 63),
          "; set vault.hashicorp.com/agent-inject-status to \"update\" to inject it again"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckContainers(const json::array& list, std::string_view where) {
  for (const json::value& c : list) {
    if (!c.is_object() || NameOf(c).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.", Av(where), " holds an entry without a name"));
    }
    auto it = c.get_object().find("volumeMounts");
    if (it != c.get_object().end() && !it->value().is_null() && !it->value().is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.", Av(where), "[].volumeMounts is not an array"));
    }
  }
  return absl::OkStatus();
}

struct Injection {
  json::array ops;
  std::vector<std::string> warnings;
  std::string summary;
};

absl::StatusOr<Injection> Inject(const json::object& pod, InjectionSpec spec) {
  const json::object* pod_spec = ObjectAt(pod, "spec");
  if (pod_spec == nullptr) return absl::InvalidArgumentError("the pod has no spec");
  json::array containers, init_containers, volumes;
  if (absl::Status s = ArrayAt(*pod_spec, "containers", "spec", &containers); !s.ok()) return s;
  if (absl::Status s = ArrayAt(*pod_spec, "initContainers", "spec", &init_containers); !s.ok()) {
    return s;
  }
  if (absl::Status s = ArrayAt(*pod_spec, "volumes", "spec", &volumes); !s.ok()) return s;
  if (containers.empty()) return absl::InvalidArgumentError("the pod has no containers");
  if (absl::Status s = CheckContainers(containers, "containers"); !s.ok()) return s;
  if (absl::Status s = CheckContainers(init_containers, "initContainers"); !s.ok()) return s;
  const json::array original_containers = containers;
  const json::array original_init = init_containers;
  const json::array original_volumes = volumes;

  if (spec.update) {
    StripInjected(containers);
    StripInjected(init_containers);
    json::array kept;
    for (json::value& v : volumes) {
      if (!IsInjectedVolume(NameOf(v))) kept.push_back(std::move(v));
    }
    volumes = std::move(kept);
  } else if (absl::Status s = CheckNotInjected(containers, init_containers, volumes); !s.ok()) {
    return s;
  }
  if (containers.empty()) return absl::InvalidArgumentError("the pod has no app containers");

  if (containers.size() + init_containers.size() > kMaxContainers) {
    return absl::InvalidArgumentError(absl::StrCat("the pod has more than ", kMaxContainers,
                                                   " containers and init containers together"));
  }
  const std::vector<std::pair<std::string, std::string>> secret_mounts = SecretMounts(spec);
  if (secret_mounts.size() > kMaxSecretDirectories) {
    return absl::InvalidArgumentError(absl::StrCat(
        "more than ", kMaxSecretDirectories, " secret directories (secret-volume-path-NAME)"));
  }
  absl::StatusOr<TokenMount> token = FindTokenMount(spec, containers, volumes);
  if (!token.ok()) return token.status();
  // The agents must be able to start with what is generated: refused now, not failing later.
  for (bool init : {true, false}) {
    if (absl::Status s = CheckAgentAccepts(AgentConfigJson(spec, token->TokenPath(), init));
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [name, path] : secret_mounts) {
    if (path == token->mount_path || path == kHomePath || path == kTlsPath ||
        path == kExtraSecretPath) {
      return absl::InvalidArgumentError(
          absl::StrCat("the secret volume path ", path, " is also where the agent mounts its ",
                       path == token->mount_path ? "service-account token" : "own files"));
    }
  }

  int64_t uid = spec.run_as_user;
  if (spec.run_as_same_user) {
    const json::object* first = containers[0].is_object() ? &containers[0].get_object() : nullptr;
    const json::object* sc = first ? ObjectAt(*first, "securityContext") : nullptr;
    auto it = sc ? sc->find("runAsUser") : nullptr;
    if (it == nullptr || it == sc->end() || !it->value().is_int64() ||
        it->value().get_int64() <= 0 || it->value().get_int64() > 2147483647) {
      return absl::InvalidArgumentError(
          "annotation vault.hashicorp.com/agent-run-as-same-user: the first container has no "
          "non-root securityContext.runAsUser");
    }
    uid = it->value().get_int64();
  }

  Injection out;
  // Which app containers get the secrets (agent-inject-containers; all by default).
  std::set<std::string> targets;
  if (spec.inject_containers) {
    for (const std::string& name : *spec.inject_containers) {
      bool found = std::any_of(containers.begin(), containers.end(),
                               [&](const json::value& c) { return NameOf(c) == name; });
      if (!found) {
        out.warnings.push_back(absl::StrCat(
            "vault.hashicorp.com/agent-inject-containers: the pod has no container ", name));
      }
      targets.insert(name);
    }
  }
  for (json::value& c : containers) {
    if (spec.inject_containers && targets.count(std::string(NameOf(c))) == 0) continue;
    if (absl::Status s = AddSecretMounts(c, spec, "container"); !s.ok()) return s;
  }
  // The pod's own init containers see the secrets when the init agent runs (Vault does the same).
  if (spec.pre_populate) {
    for (json::value& c : init_containers) {
      if (absl::Status s = AddSecretMounts(c, spec, "init container"); !s.ok()) return s;
    }
    json::value agent_init = AgentContainer(spec, *token, uid, true);
    if (spec.init_first) {
      init_containers.insert(init_containers.begin(), std::move(agent_init));
    } else {
      init_containers.push_back(std::move(agent_init));
    }
  }
  if (!spec.pre_populate_only) containers.push_back(AgentContainer(spec, *token, uid, false));

  if (spec.pre_populate) volumes.push_back(EmptyDirMemory(kHomeInitVolume));
  if (!spec.pre_populate_only) volumes.push_back(EmptyDirMemory(kHomeSidecarVolume));
  for (const auto& [name, path] : SecretMounts(spec)) volumes.push_back(EmptyDirMemory(name));
  if (!spec.tls_secret.empty()) {
    volumes.push_back(json::object{{"name", kTlsVolume},
                                   {"secret", json::object{{"secretName", spec.tls_secret}}}});
  }
  if (!spec.extra_secret.empty()) {
    volumes.push_back(json::object{{"name", kExtraSecretVolume},
                                   {"secret", json::object{{"secretName", spec.extra_secret}}}});
  }
  std::set<std::string_view> volume_names;
  for (const json::value& v : volumes) {
    if (!volume_names.insert(NameOf(v)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the pod already has a volume named ", Printable(NameOf(v), 63)));
    }
  }

  // Whole arrays: "add" replaces a member that exists (RFC 6902 4.1), so one operation per array
  // is right whether the pod had the array or not, and whatever an update took out of it.
  auto put = [&](std::string_view path, const json::array& before, json::array after) {
    if (after == before) return;
    out.ops.push_back(json::object{{"op", "add"}, {"path", path}, {"value", std::move(after)}});
  };
  put("/spec/volumes", original_volumes, std::move(volumes));
  put("/spec/initContainers", original_init, std::move(init_containers));
  put("/spec/containers", original_containers, std::move(containers));
  out.ops.push_back(
      json::object{{"op", "add"},
                   {"path", "/metadata/annotations/vault.hashicorp.com~1agent-inject-status"},
                   {"value", "injected"}});
  std::vector<std::string> parts;
  if (spec.pre_populate) parts.push_back("init");
  if (!spec.pre_populate_only) parts.push_back("sidecar");
  out.summary = absl::StrCat(absl::StrJoin(parts, "+"), ", ", spec.secrets.size(), " template",
                             spec.secrets.size() == 1 ? "" : "s", spec.update ? ", update" : "");
  return out;
}

json::object Answer(std::string_view uid) { return json::object{{"uid", uid}}; }

std::string Review(json::object response) {
  return core::Serialize(json::object{{"apiVersion", "admission.k8s.io/v1"},
                                      {"kind", "AdmissionReview"},
                                      {"response", std::move(response)}});
}

}  // namespace

std::string AgentConfigJson(const InjectionSpec& spec, std::string_view token_path, bool init) {
  json::object method_config;
  method_config["token_path"] = token_path;
  for (const auto& [key, value] : spec.auth_config) method_config[key] = value;
  if (!spec.role.empty()) method_config["role"] = spec.role;
  json::array sinks{json::object{{"type", "file"}, {"config", json::object{{"path", kTokenFile}}}}};
  if (spec.inject_token) {
    sinks.push_back(json::object{
        {"type", "file"},
        {"config", json::object{{"path", absl::StrCat(spec.secret_volume_path, "/token")}}}});
  }
  json::object vault{{"address", spec.vault_address}};
  if (!spec.ca_cert.empty()) vault["ca_cert"] = spec.ca_cert;
  vault["tls_skip_verify"] = spec.tls_skip_verify;
  if (!spec.tls_server_name.empty()) vault["tls_server_name"] = spec.tls_server_name;

  json::object config{
      {"auto_auth", json::object{{"method", json::object{{"type", "kubernetes"},
                                                         {"mount_path", spec.auth_path},
                                                         {"config", std::move(method_config)}}},
                                 {"sink", std::move(sinks)}}},
      {"exit_after_auth", init},
      {"pid_file", kPidFile},
      {"vault", std::move(vault)},
  };
  if (!spec.secrets.empty()) {
    json::array templates;
    for (const SecretTemplate& t : spec.secrets) {
      json::object tmpl{{"destination", t.destination},
                        {"contents", t.contents},
                        {"left_delimiter", "{{"},
                        {"right_delimiter", "}}"}};
      if (!t.perms.empty()) tmpl["perms"] = t.perms;
      if (!t.command.empty()) tmpl["command"] = t.command;
      tmpl["error_on_missing_key"] = t.error_on_missing_key;
      templates.push_back(std::move(tmpl));
    }
    config["template"] = std::move(templates);
  }
  json::object template_config{{"exit_on_retry_failure", spec.exit_on_retry_failure}};
  if (!spec.static_secret_render_interval.empty()) {
    template_config["static_secret_render_interval"] = spec.static_secret_render_interval;
  }
  config["template_config"] = std::move(template_config);
  return core::Serialize(config);
}

absl::StatusOr<MutationResult> Mutate(std::string_view review, const InjectorDefaults& defaults) {
  core::JsonLimits limits;
  limits.max_depth = 64;
  if (core::JsonLimit l = core::CheckJsonLimits(review, limits); l != core::JsonLimit::kNone) {
    return absl::InvalidArgumentError(l == core::JsonLimit::kSyntax
                                          ? std::string("the body is not JSON")
                                          : std::string(core::JsonLimitError(l)));
  }
  absl::StatusOr<json::object> parsed = core::ParseObject(review, limits.max_depth);
  if (!parsed.ok()) return parsed.status();
  if (StringAt(*parsed, "apiVersion") != "admission.k8s.io/v1" ||
      StringAt(*parsed, "kind") != "AdmissionReview") {
    return absl::InvalidArgumentError("the body is not an admission.k8s.io/v1 AdmissionReview");
  }
  const json::object* request = ObjectAt(*parsed, "request");
  std::string_view uid = request ? StringAt(*request, "uid") : std::string_view();
  if (uid.empty() || uid.size() > kMaxUidBytes) {
    return absl::InvalidArgumentError("the AdmissionReview has no request.uid");
  }

  MutationResult result;
  std::string ns = Printable(StringAt(*request, "namespace"), 63);
  const json::object* pod = ObjectAt(*request, "object");
  const json::object* metadata = pod ? ObjectAt(*pod, "metadata") : nullptr;
  std::string pod_name = "?";
  if (metadata != nullptr) {
    if (!StringAt(*metadata, "name").empty()) {
      pod_name = Printable(StringAt(*metadata, "name"), 253);
    } else if (!StringAt(*metadata, "generateName").empty()) {
      pod_name = absl::StrCat(Printable(StringAt(*metadata, "generateName"), 253), "*");
    }
    if (ns.empty()) ns = Printable(StringAt(*metadata, "namespace"), 63);
  }
  std::string who = absl::StrCat(ns.empty() ? "?" : ns, "/", pod_name);
  auto allow = [&](std::string_view why) {
    json::object answer = Answer(uid);
    answer["allowed"] = true;
    result.response = Review(std::move(answer));
    result.log_line = absl::StrCat(who, ": not injected (", Av(why), ")");
  };
  auto refuse = [&](std::string_view message) {
    json::object answer = Answer(uid);
    answer["allowed"] = false;
    answer["status"] = json::object{{"metadata", json::object{}},
                                    {"status", "Failure"},
                                    {"message", message},
                                    {"reason", "BadRequest"},
                                    {"code", 400}};
    result.response = Review(std::move(answer));
    result.refused = true;
    result.log_line = absl::StrCat(who, ": refused: ", Printable(message, 300));
  };

  const json::object* kind = ObjectAt(*request, "kind");
  if (kind == nullptr || StringAt(*kind, "kind") != "Pod" || !StringAt(*kind, "group").empty()) {
    allow("not a pod");
    return result;
  }
  if (StringAt(*request, "operation") != "CREATE") {
    allow("not a CREATE");
    return result;
  }
  if (pod == nullptr) {
    refuse("the AdmissionReview has no request.object");
    return result;
  }
  std::map<std::string, std::string> annotations;
  size_t annotation_bytes = 0;
  if (metadata != nullptr) {
    if (auto it = metadata->find("annotations"); it != metadata->end() && !it->value().is_null()) {
      if (!it->value().is_object() || it->value().get_object().size() > kMaxAnnotations) {
        refuse("metadata.annotations is not an object of at most 4096 strings");
        return result;
      }
      for (const auto& kv : it->value().get_object()) {
        if (!kv.value().is_string()) {
          refuse(absl::StrCat("metadata.annotations: the value of ", Printable(kv.key(), 253),
                              " is not a string"));
          return result;
        }
        const json::string& v = kv.value().get_string();
        annotation_bytes += kv.key().size() + v.size();
        annotations.emplace(std::string(kv.key()), std::string(v.data(), v.size()));
      }
      if (annotation_bytes > kMaxAnnotationBytes) {
        refuse("metadata.annotations: more than 256 KiB together (Kubernetes' limit)");
        return result;
      }
    }
  }
  absl::StatusOr<AnnotationDecision> decision = ReadAnnotations(annotations, defaults);
  if (!decision.ok()) {
    refuse(Sv(decision.status().message()));
    return result;
  }
  if (!decision->inject) {
    allow(decision->reason);
    return result;
  }
  std::vector<std::string> warnings = decision->spec.warnings;
  absl::StatusOr<Injection> injection = Inject(*pod, std::move(decision->spec));
  if (!injection.ok()) {
    refuse(Sv(injection.status().message()));
    return result;
  }
  warnings.insert(warnings.end(), injection->warnings.begin(), injection->warnings.end());

  json::object answer = Answer(uid);
  answer["allowed"] = true;
  answer["patchType"] = "JSONPatch";
  const std::string ops = core::Serialize(injection->ops);
  if (ops.size() > kMaxPatchBytes) {
    refuse("the injection would make a patch larger than 1 MiB");
    return result;
  }
  answer["patch"] = absl::Base64Escape(ops);
  if (!warnings.empty()) {
    json::array list;
    for (size_t i = 0; i < warnings.size() && i < kMaxWarnings; ++i) {
      list.push_back(json::string(Printable(warnings[i], kMaxWarningBytes)));
    }
    if (warnings.size() > kMaxWarnings) {
      list.push_back(json::string(
          absl::StrCat(warnings.size() - kMaxWarnings, " more vault.hashicorp.com warnings")));
    }
    answer["warnings"] = std::move(list);
  }
  result.response = Review(std::move(answer));
  result.injected = true;
  result.log_line = absl::StrCat(who, ": injected (", injection->summary, ", ", warnings.size(),
                                 " warning", warnings.size() == 1 ? "" : "s", ")");
  return result;
}

}  // namespace strongroom::injector
