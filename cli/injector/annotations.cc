#include "cli/injector/annotations.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/duration.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::injector {
namespace {

// Bounds on what one pod may ask for (the apiserver caps all annotations at 256 KiB together).
constexpr size_t kMaxSecrets = 128;
constexpr size_t kMaxTemplateBytes = 256 * 1024;
constexpr size_t kMaxCommandBytes = 4096;
constexpr size_t kMaxPathBytes = 1024;
constexpr size_t kMaxFileBytes = 255;
constexpr size_t kMaxShortValueBytes = 512;
constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();

// The Vault injector's default templates (agent-inject/agent/config.go): "map" prints one
// "key: value" line per key of the secret's data, "json" prints the data as one JSON document.
constexpr std::string_view kMapTemplateHead = "{{ with secret \"";
constexpr std::string_view kMapTemplateTail =
    "\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";
constexpr std::string_view kJsonTemplateTail = "\" }}{{ .Data | toJSON }}\n{{ end }}";

constexpr std::string_view kSecretPrefix = "agent-inject-secret-";
constexpr std::string_view kTemplateFilePrefix = "agent-inject-template-file-";
constexpr std::string_view kTemplatePrefix = "agent-inject-template-";
constexpr std::string_view kFilePrefix = "agent-inject-file-";
constexpr std::string_view kPermsPrefix = "agent-inject-perms-";
constexpr std::string_view kCommandPrefix = "agent-inject-command-";
constexpr std::string_view kMissingKeyPrefix = "error-on-missing-key-";
constexpr std::string_view kPreserveCasePrefix = "preserve-secret-case-";
constexpr std::string_view kVolumePathPrefix = "secret-volume-path-";
constexpr std::string_view kAuthConfigPrefix = "auth-config-";
constexpr std::string_view kTelemetryPrefix = "agent-telemetry-";

// Per-secret annotations, read after the secret names are known.
constexpr std::string_view kPerSecretPrefixes[] = {
    kSecretPrefix,  kTemplateFilePrefix, kTemplatePrefix,     kFilePrefix,       kPermsPrefix,
    kCommandPrefix, kMissingKeyPrefix,   kPreserveCasePrefix, kVolumePathPrefix,
};

// The global annotations strongroom reads (everything else under the prefix is warned about).
constexpr std::string_view kSupported[] = {
    "agent-inject",
    "agent-inject-status",
    "agent-image",
    "service",
    "role",
    "auth-type",
    "auth-path",
    "ca-cert",
    "tls-skip-verify",
    "tls-server-name",
    "tls-secret",
    "agent-extra-secret",
    "secret-volume-path",
    "agent-pre-populate",
    "agent-pre-populate-only",
    "agent-init-first",
    "agent-inject-token",
    "agent-inject-containers",
    "agent-inject-default-template",
    "agent-run-as-user",
    "agent-run-as-group",
    "agent-run-as-same-user",
    "agent-set-security-context",
    "agent-requests-cpu",
    "agent-requests-mem",
    "agent-requests-ephemeral",
    "agent-limits-cpu",
    "agent-limits-mem",
    "agent-limits-ephemeral",
    "template-static-secret-render-interval",
    "template-config-exit-on-retry-failure",
    "log-level",
    "log-format",
    "preserve-secret-case",
    "agent-service-account-token-volume-name",
};

// Vault injector annotations that change what the agent does in ways strongroom's agent cannot
// honour: a non-empty value refuses the admission rather than inject a pod that behaves
// differently from what its author asked for.
constexpr std::string_view kRefusedWhenSet[] = {
    "agent-configmap", "agent-json-patch", "agent-init-json-patch", "namespace", "client-cert",
    "client-key",      "ca-key",           "proxy-address",
};

// Vault injector annotations that only tune the agent (retries, caching, telemetry, shutdown):
// strongroom ignores them and says so in a warning.
constexpr std::string_view kIgnored[] = {
    "agent-revoke-on-shutdown",
    "agent-revoke-grace",
    "client-max-retries",
    "client-timeout",
    "go-max-procs",
    "agent-cache-use-auto-auth-token",
    "agent-cache-listener-port",
    "agent-cache-exit-on-err",
    "agent-share-process-namespace",
    "template-max-connections-per-host",
    "agent-enable-quit",
    "auth-min-backoff",
    "auth-max-backoff",
    "agent-disable-idle-connections",
    "agent-disable-keep-alives",
    "agent-auto-auth-exit-on-err",
    "agent-metrics-listener-port",
    "agent-copy-volume-mounts",
    "agent-request-namespace",
};

template <size_t N>
bool InList(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  });
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// A path component of a file name: [A-Za-z0-9._-]+, not "." or "..".
bool IsFileComponent(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; });
}

// A relative path of file components ("api-keys", "config/app.env").
bool IsRelativeFilePath(std::string_view s) {
  if (s.empty() || s.size() > kMaxFileBytes) return false;
  for (absl::string_view part : absl::StrSplit(Av(s), '/')) {
    if (!IsFileComponent(Sv(part))) return false;
  }
  return true;
}

// An absolute directory path of file components ("/vault/secrets"), not "/".
bool IsAbsoluteDirPath(std::string_view s) {
  return s.size() > 1 && s.size() <= kMaxFileBytes && s[0] == '/' &&
         IsRelativeFilePath(s.substr(1));
}

// RFC 1123 label: what Kubernetes accepts as a container or volume name.
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// RFC 1123 subdomain: what Kubernetes accepts as a Secret name.
bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view part : absl::StrSplit(Av(s), '.')) {
    if (part.empty() || part.size() > 63 || part.front() == '-' || part.back() == '-') {
      return false;
    }
    for (char c : part) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
  }
  return true;
}

// Vault's role names (framework.GenericNameRegex): word characters at both ends, word
// characters, '-' and '.' between.
bool IsVaultName(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  if (!word(s.front()) || !word(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return word(c) || c == '-' || c == '.'; });
}

// A Vault secret path as it goes between the quotes of the default template: no quote,
// backslash, braces, whitespace or control characters, so it can never end the string or the
// action it sits in.
bool IsVaultPath(std::string_view s) {
  if (s.empty() || s.size() > kMaxPathBytes) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '\\' || c == '{' || c == '}' || c == '`';
  });
}

std::string Key(std::string_view suffix) { return absl::StrCat(Av(kAnnotationPrefix), Av(suffix)); }

absl::Status Bad(std::string_view suffix, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("annotation ", Av(kAnnotationPrefix), Av(suffix), ": ", Av(what)));
}

class Reader {
 public:
  explicit Reader(const std::map<std::string, std::string>& annotations) {
    for (const auto& [key, value] : annotations) {
      if (StartsWith(key, kAnnotationPrefix)) {
        ours_.emplace(key.substr(kAnnotationPrefix.size()), value);
      }
    }
  }

  const std::map<std::string, std::string>& ours() const { return ours_; }

  const std::string* Find(std::string_view suffix) {
    auto it = ours_.find(std::string(suffix));
    if (it == ours_.end()) return nullptr;
    used_.insert(it->first);
    return &it->second;
  }
  void MarkUsed(const std::string& suffix) { used_.insert(suffix); }
  bool Used(const std::string& suffix) const { return used_.count(suffix) != 0; }

  // Boolean with a default (Go's strconv.ParseBool).
  absl::Status Bool(std::string_view suffix, bool* out) {
    const std::string* v = Find(suffix);
    if (v == nullptr) return absl::OkStatus();
    std::string err = CheckBool(*v, out);
    if (!err.empty()) return Bad(suffix, err);
    return absl::OkStatus();
  }

 private:
  std::map<std::string, std::string> ours_;  // suffix -> value
  std::set<std::string> used_;
};

absl::Status ReadQuantity(Reader& r, std::string_view suffix, std::string* out) {
  const std::string* v = r.Find(suffix);
  if (v == nullptr) return absl::OkStatus();
  if (!v->empty()) {  // "" removes the injector's default, as with Vault
    long double ignored = 0;
    std::string err = CheckQuantity(*v, &ignored);
    if (!err.empty()) return Bad(suffix, err);
  }
  *out = *v;
  return absl::OkStatus();
}

absl::Status CheckRequestWithinLimit(std::string_view request, std::string_view limit,
                                     std::string_view request_suffix,
                                     std::string_view limit_suffix) {
  if (request.empty() || limit.empty()) return absl::OkStatus();
  long double req = 0, lim = 0;
  if (!CheckQuantity(request, &req).empty() || !CheckQuantity(limit, &lim).empty()) {
    return Bad(request_suffix, "not a Kubernetes quantity");
  }
  if (req > lim) {
    return Bad(request_suffix,
               absl::StrCat("is more than ", Av(kAnnotationPrefix), Av(limit_suffix),
                            " (Kubernetes would refuse the pod)"));
  }
  return absl::OkStatus();
}

std::string DefaultTemplate(std::string_view kind, std::string_view vault_path) {
  return absl::StrCat(Av(kMapTemplateHead), Av(vault_path),
                      kind == "json" ? Av(kJsonTemplateTail) : Av(kMapTemplateTail));
}

}  // namespace

std::string CheckBool(std::string_view v, bool* out) {
  if (ParseGoBool(v, out)) {
    return "";
  }
  return "not a boolean (true, false, 1, 0, t, f, TRUE, FALSE, True, False)";
}

// <quantity> ::= <number><suffix>, <number> ::= digits[.digits] | .digits (an optional '+'),
// <suffix> ::= Ki|Mi|Gi|Ti|Pi|Ei | n|u|m||k|M|G|T|P|E | (e|E)[+-]digits. Negative quantities are
// refused (a resource amount never is).
std::string CheckQuantity(std::string_view v, long double* out) {
  constexpr std::string_view kWhat =
      "not a Kubernetes quantity (a non-negative number with an optional suffix such as m, Mi, "
      "Gi, k, M)";
  if (v.empty() || v.size() > 64) return std::string(kWhat);
  size_t i = 0;
  if (v[i] == '+') ++i;
  size_t int_start = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  size_t int_digits = i - int_start;
  size_t frac_digits = 0;
  if (i < v.size() && v[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    frac_digits = i - frac_start;
  }
  if (int_digits + frac_digits == 0) return std::string(kWhat);
  long double number = 0;
  {
    std::string digits(v.substr(int_start, i - int_start));
    char* end = nullptr;
    number = std::strtold(digits.c_str(), &end);
    if (end == nullptr || *end != '\0') return std::string(kWhat);
  }
  std::string_view suffix = v.substr(i);
  long double scale = 1;
  struct Unit {
    std::string_view name;
    long double scale;
  };
  static constexpr Unit kUnits[] = {
      {"Ki", 1024.0L},
      {"Mi", 1048576.0L},
      {"Gi", 1073741824.0L},
      {"Ti", 1099511627776.0L},
      {"Pi", 1125899906842624.0L},
      {"Ei", 1152921504606846976.0L},
      {"n", 1e-9L},
      {"u", 1e-6L},
      {"m", 1e-3L},
      {"", 1.0L},
      {"k", 1e3L},
      {"M", 1e6L},
      {"G", 1e9L},
      {"T", 1e12L},
      {"P", 1e15L},
      {"E", 1e18L},
  };
  bool known = false;
  for (const Unit& u : kUnits) {
    if (u.name == suffix) {
      scale = u.scale;
      known = true;
      break;
    }
  }
  if (!known) {
    if (suffix[0] != 'e' && suffix[0] != 'E') return std::string(kWhat);
    size_t j = 1;
    bool negative = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) negative = suffix[j++] == '-';
    if (j == suffix.size() || suffix.size() - j > 3) return std::string(kWhat);
    int exponent = 0;
    for (; j < suffix.size(); ++j) {
      if (suffix[j] < '0' || suffix[j] > '9') return std::string(kWhat);
      exponent = exponent * 10 + (suffix[j] - '0');
    }
    scale = 1;
    for (int k = 0; k < exponent; ++k) scale = negative ? scale / 10 : scale * 10;
  }
  *out = number * scale;
  return "";
}

// Go's time.ParseDuration: [+]( number unit )+ with units ns, us, µs, μs, ms, s, m, h, or "0".
std::string CheckGoDuration(std::string_view v) {
  constexpr std::string_view kWhat =
      "not a duration (a number and a unit, ns, us, ms, s, m or h, such as 30s, 5m, 1h30m)";
  if (v.empty() || v.size() > 64) return std::string(kWhat);
  absl::StatusOr<int64_t> nanos = ParseGoDurationNanos(v);
  if (absl::IsOutOfRange(nanos.status())) {
    // Go's time.Duration is int64 nanoseconds (about 292 years).
    return "a duration longer than Go's time.Duration holds (292 years)";
  }
  if (!nanos.ok()) return std::string(kWhat);
  if (*nanos < 0 || v[0] == '-') return "a negative duration";
  return "";
}

std::string CheckVaultAddress(std::string_view v) {
  std::string_view rest;
  if (StartsWith(v, "https://")) {
    rest = v.substr(8);
  } else if (StartsWith(v, "http://")) {
    rest = v.substr(7);
  } else {
    return "not an http:// or https:// address";
  }
  if (v.size() > 2048 || rest.empty() || rest[0] == '/' || HasControl(v) ||
      v.find(' ') != std::string_view::npos || v.find('"') != std::string_view::npos ||
      v.find('\\') != std::string_view::npos) {
    return "not an http:// or https:// address";
  }
  return "";
}

// name[:tag][@digest] with a registry and path: lower-case start, no whitespace or controls.
std::string CheckImage(std::string_view v) {
  constexpr std::string_view kWhat = "not a container image reference";
  if (v.empty() || v.size() > kMaxShortValueBytes || !IsAlnum(v[0])) return std::string(kWhat);
  bool ok = std::all_of(v.begin(), v.end(), [](char c) {
    return IsAlnum(c) || c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
  });
  return ok ? "" : std::string(kWhat);
}

std::string CheckAuthPath(std::string_view v) {
  constexpr std::string_view kWhat = "not a Vault auth mount path (such as auth/kubernetes)";
  if (v.empty() || v.size() > 256 || v.front() == '/' || v.back() == '/') {
    return std::string(kWhat);
  }
  for (absl::string_view part : absl::StrSplit(Av(v), '/')) {
    if (!IsFileComponent(Sv(part))) return std::string(kWhat);
  }
  return "";
}

std::string CheckUid(std::string_view v, bool allow_zero, int64_t* out) {
  std::string what = allow_zero ? "not an id from 0 to 2147483647"
                                : "not an id from 1 to 2147483647 (the agent never runs as root)";
  if (v.empty() || v.size() > 10 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return what;
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(Av(v), &n) || n > kMaxId || (n == 0 && !allow_zero)) return what;
  *out = n;
  return "";
}

absl::StatusOr<AnnotationDecision> ReadAnnotations(
    const std::map<std::string, std::string>& annotations, const InjectorDefaults& defaults) {
  AnnotationDecision decision;
  Reader r(annotations);

  // 1. Whether to inject at all (agent.go ShouldInject).
  const std::string* inject = r.Find("agent-inject");
  if (inject == nullptr) {
    decision.reason = "no agent-inject annotation";
    return decision;
  }
  bool want = false;
  if (std::string err = CheckBool(*inject, &want); !err.empty()) return Bad("agent-inject", err);
  if (!want) {
    decision.reason = "agent-inject is false";
    return decision;
  }
  InjectionSpec& s = decision.spec;
  if (const std::string* status = r.Find("agent-inject-status")) {
    if (*status == "injected") {
      decision.reason = "already injected";
      return decision;
    }
    if (*status != "update") {
      return Bad("agent-inject-status", "must be \"injected\" or \"update\"");
    }
    s.update = true;
  }
  decision.inject = true;

  // 2. Annotations strongroom cannot honour.
  for (std::string_view suffix : kRefusedWhenSet) {
    const std::string* v = r.Find(suffix);
    if (v != nullptr && !v->empty()) {
      return Bad(suffix, "not supported by the strongroom injector (remove it)");
    }
  }
  if (const std::string* v = r.Find("agent-cache-enable")) {
    bool cache = false;
    if (std::string err = CheckBool(*v, &cache); !err.empty()) {
      return Bad("agent-cache-enable", err);
    }
    if (cache) return Bad("agent-cache-enable", "the agent cache is not supported by strongroom");
  }

  // 3. Global settings, in a fixed order.
  s.image = defaults.agent_image;
  if (const std::string* v = r.Find("agent-image")) {
    if (std::string err = CheckImage(*v); !err.empty()) return Bad("agent-image", err);
    s.image = *v;
  }
  s.vault_address = defaults.vault_address;
  if (const std::string* v = r.Find("service")) {
    if (std::string err = CheckVaultAddress(*v); !err.empty()) return Bad("service", err);
    s.vault_address = *v;
  }
  if (s.vault_address.empty()) {
    return absl::InvalidArgumentError(
        "no Vault address: start the injector with -vault-address or set the annotation "
        "vault.hashicorp.com/service");
  }
  if (const std::string* v = r.Find("auth-type"); v != nullptr && *v != "kubernetes") {
    return Bad("auth-type", "strongroom's agent authenticates with \"kubernetes\" only");
  }
  s.auth_path = defaults.auth_path;
  if (const std::string* v = r.Find("auth-path")) {
    if (std::string err = CheckAuthPath(*v); !err.empty()) return Bad("auth-path", err);
    s.auth_path = *v;
  }
  for (const auto& [suffix, value] : r.ours()) {
    if (!StartsWith(suffix, kAuthConfigPrefix)) continue;
    r.MarkUsed(suffix);
    std::string param = suffix.substr(kAuthConfigPrefix.size());
    std::replace(param.begin(), param.end(), '-', '_');
    bool good_key =
        !param.empty() && param.size() <= 64 && std::all_of(param.begin(), param.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        });
    if (!good_key) return Bad(suffix, "not a lower-case auth method parameter name");
    if (value.size() > kMaxPathBytes || HasControl(value)) {
      return Bad(suffix, "longer than 1024 bytes or holds control characters");
    }
    s.auth_config[param] = value;
  }
  if (const std::string* v = r.Find("role")) {
    if (!IsVaultName(*v)) {
      return Bad("role", "not a Vault role name (letters, digits, '_', '-' and '.')");
    }
    s.role = *v;
  }
  if (s.role.empty() && s.auth_config.count("role") == 0) {
    return Bad("role", "missing: the Kubernetes auth method needs a Vault role");
  }
  if (const std::string* v = r.Find("ca-cert"); v != nullptr && !v->empty()) {
    if (v->size() > kMaxPathBytes || (*v)[0] != '/' || HasControl(*v)) {
      return Bad("ca-cert", "not an absolute file path");
    }
    s.ca_cert = *v;
  }
  RETURN_IF_ERROR(r.Bool("tls-skip-verify", &s.tls_skip_verify));
  if (const std::string* v = r.Find("tls-server-name"); v != nullptr && !v->empty()) {
    bool ok = v->size() <= 253 && std::all_of(v->begin(), v->end(), [](char c) {
                return IsAlnum(c) || c == '.' || c == '-';
              });
    if (!ok) return Bad("tls-server-name", "not a host name");
    s.tls_server_name = *v;
  }
  if (const std::string* v = r.Find("tls-secret"); v != nullptr && !v->empty()) {
    if (!IsDnsSubdomain(*v)) return Bad("tls-secret", "not a Kubernetes Secret name");
    s.tls_secret = *v;
  }
  if (const std::string* v = r.Find("agent-extra-secret"); v != nullptr && !v->empty()) {
    if (!IsDnsSubdomain(*v)) return Bad("agent-extra-secret", "not a Kubernetes Secret name");
    s.extra_secret = *v;
  }
  if (const std::string* v = r.Find("secret-volume-path")) {
    if (!IsAbsoluteDirPath(*v)) {
      return Bad("secret-volume-path",
                 "not an absolute directory path of letters, digits, '.', '_' and '-'");
    }
    s.secret_volume_path = *v;
  }
  RETURN_IF_ERROR(r.Bool("agent-pre-populate", &s.pre_populate));
  RETURN_IF_ERROR(r.Bool("agent-pre-populate-only", &s.pre_populate_only));
  if (!s.pre_populate && s.pre_populate_only) {
    return Bad("agent-pre-populate-only",
               "is true while agent-pre-populate is false: no agent container would be left");
  }
  RETURN_IF_ERROR(r.Bool("agent-init-first", &s.init_first));
  RETURN_IF_ERROR(r.Bool("agent-inject-token", &s.inject_token));
  if (const std::string* v = r.Find("agent-inject-containers"); v != nullptr && !v->empty()) {
    std::vector<std::string> names;
    for (absl::string_view part : absl::StrSplit(Av(*v), ',')) {
      std::string name(absl::StripAsciiWhitespace(part));
      if (!IsDnsLabel(name)) {
        return Bad("agent-inject-containers", "not a comma-separated list of container names");
      }
      names.push_back(std::move(name));
    }
    s.inject_containers = std::move(names);
  }
  std::string default_template = defaults.default_template;
  if (const std::string* v = r.Find("agent-inject-default-template")) {
    default_template = absl::AsciiStrToLower(*v);
    if (default_template != "map" && default_template != "json") {
      return Bad("agent-inject-default-template", "must be \"map\" or \"json\"");
    }
  }
  s.run_as_user = defaults.run_as_user;
  s.run_as_group = defaults.run_as_group;
  if (const std::string* v = r.Find("agent-run-as-user")) {
    if (std::string err = CheckUid(*v, false, &s.run_as_user); !err.empty()) {
      return Bad("agent-run-as-user", err);
    }
  }
  if (const std::string* v = r.Find("agent-run-as-group")) {
    if (std::string err = CheckUid(*v, true, &s.run_as_group); !err.empty()) {
      return Bad("agent-run-as-group", err);
    }
  }
  RETURN_IF_ERROR(r.Bool("agent-run-as-same-user", &s.run_as_same_user));
  bool security_context = true;
  RETURN_IF_ERROR(r.Bool("agent-set-security-context", &security_context));
  if (!security_context) {
    s.warnings.push_back(
        absl::StrCat(Key("agent-set-security-context"),
                     ": ignored, strongroom always sets a hardened securityContext"));
  }
  Resources& res = s.resources;
  res.cpu_request = defaults.cpu_request;
  res.mem_request = defaults.mem_request;
  res.ephemeral_request = defaults.ephemeral_request;
  res.cpu_limit = defaults.cpu_limit;
  res.mem_limit = defaults.mem_limit;
  res.ephemeral_limit = defaults.ephemeral_limit;
  RETURN_IF_ERROR(ReadQuantity(r, "agent-requests-cpu", &res.cpu_request));
  RETURN_IF_ERROR(ReadQuantity(r, "agent-requests-mem", &res.mem_request));
  RETURN_IF_ERROR(ReadQuantity(r, "agent-requests-ephemeral", &res.ephemeral_request));
  RETURN_IF_ERROR(ReadQuantity(r, "agent-limits-cpu", &res.cpu_limit));
  RETURN_IF_ERROR(ReadQuantity(r, "agent-limits-mem", &res.mem_limit));
  RETURN_IF_ERROR(ReadQuantity(r, "agent-limits-ephemeral", &res.ephemeral_limit));
  RETURN_IF_ERROR(CheckRequestWithinLimit(res.cpu_request, res.cpu_limit, "agent-requests-cpu",
                                          "agent-limits-cpu"));
  RETURN_IF_ERROR(CheckRequestWithinLimit(res.mem_request, res.mem_limit, "agent-requests-mem",
                                          "agent-limits-mem"));
  RETURN_IF_ERROR(CheckRequestWithinLimit(res.ephemeral_request, res.ephemeral_limit,
                                          "agent-requests-ephemeral", "agent-limits-ephemeral"));
  s.static_secret_render_interval = defaults.static_secret_render_interval;
  if (const std::string* v = r.Find("template-static-secret-render-interval")) {
    if (std::string err = CheckGoDuration(*v); !err.empty()) {
      return Bad("template-static-secret-render-interval", err);
    }
    s.static_secret_render_interval = *v;
  }
  s.exit_on_retry_failure = defaults.exit_on_retry_failure;
  RETURN_IF_ERROR(r.Bool("template-config-exit-on-retry-failure", &s.exit_on_retry_failure));
  if (const std::string* v = r.Find("log-level")) {
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (!InList(kLevels, *v)) return Bad("log-level", "must be trace, debug, info, warn or error");
    s.log_level = *v;
  }
  if (const std::string* v = r.Find("log-format")) {
    if (*v != "standard" && *v != "json") return Bad("log-format", "must be standard or json");
    s.log_format = *v;
  }
  bool preserve_case = false;
  RETURN_IF_ERROR(r.Bool("preserve-secret-case", &preserve_case));
  if (const std::string* v = r.Find("agent-service-account-token-volume-name");
      v != nullptr && !v->empty()) {
    if (!IsDnsLabel(*v)) {
      return Bad("agent-service-account-token-volume-name", "not a volume name");
    }
    s.service_account_token_volume_name = *v;
  }

  // 4. The secrets: every name that has a non-blank agent-inject-secret-NAME or
  // agent-inject-template-NAME (agent-inject-template-file-NAME is refused: strongroom reads
  // templates from annotations only).
  std::set<std::string> raw_names;
  for (const auto& [suffix, value] : r.ours()) {
    if (IsBlank(value)) continue;
    if (StartsWith(suffix, kTemplateFilePrefix)) {
      return Bad(suffix,
                 "template files are not supported by the strongroom injector; give the "
                 "template in agent-inject-template-NAME");
    }
    std::string_view name;
    if (StartsWith(suffix, kSecretPrefix)) {
      name = std::string_view(suffix).substr(kSecretPrefix.size());
    } else if (StartsWith(suffix, kTemplatePrefix)) {
      name = std::string_view(suffix).substr(kTemplatePrefix.size());
    } else {
      continue;
    }
    if (name.empty() || name.size() > 200 || !IsFileComponent(name)) {
      return Bad(suffix, "the secret name is not letters, digits, '.', '_' and '-'");
    }
    raw_names.emplace(name);
  }
  if (raw_names.size() > kMaxSecrets) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", kMaxSecrets, " secrets in one pod"));
  }
  std::set<std::string> destinations;
  for (const std::string& raw : raw_names) {
    SecretTemplate t;
    t.raw_name = raw;
    bool keep_case = preserve_case;
    RETURN_IF_ERROR(r.Bool(absl::StrCat(Av(kPreserveCasePrefix), raw), &keep_case));
    t.name = keep_case ? raw : absl::AsciiStrToLower(raw);
    std::string secret_key = absl::StrCat(Av(kSecretPrefix), raw);
    if (const std::string* v = r.Find(secret_key); v != nullptr && !IsBlank(*v)) {
      if (!IsVaultPath(*v)) {
        return Bad(secret_key,
                   "not a Vault path (no quotes, backslashes, braces, spaces or control "
                   "characters; at most 1024 bytes)");
      }
      t.vault_path = *v;
    }
    std::string template_key = absl::StrCat(Av(kTemplatePrefix), raw);
    if (const std::string* v = r.Find(template_key); v != nullptr && !IsBlank(*v)) {
      if (v->size() > kMaxTemplateBytes || v->find('\0') != std::string::npos) {
        return Bad(template_key, "longer than 256 KiB or holds a NUL byte");
      }
      t.contents = *v;
    } else {
      t.contents = DefaultTemplate(default_template, t.vault_path);
    }
    std::string volume_key = absl::StrCat(Av(kVolumePathPrefix), raw);
    t.mount_path = s.secret_volume_path;
    if (const std::string* v = r.Find(volume_key)) {
      if (!IsAbsoluteDirPath(*v)) {
        return Bad(volume_key,
                   "not an absolute directory path of letters, digits, '.', '_' and '-'");
      }
      t.mount_path = *v;
    }
    std::string file = t.name;
    std::string file_key = absl::StrCat(Av(kFilePrefix), raw);
    if (const std::string* v = r.Find(file_key); v != nullptr && !v->empty()) {
      if (!IsRelativeFilePath(*v)) {
        return Bad(file_key,
                   "not a relative file name of letters, digits, '.', '_' and '-' (no '..')");
      }
      file = *v;
    }
    t.destination = absl::StrCat(t.mount_path, "/", file);
    if (!destinations.insert(t.destination).second) {
      return Bad(secret_key, "renders to the same file as another secret");
    }
    std::string perms_key = absl::StrCat(Av(kPermsPrefix), raw);
    if (const std::string* v = r.Find(perms_key); v != nullptr && !v->empty()) {
      std::string_view p = *v;
      if (p.size() == 4 && p[0] == '0') p.remove_prefix(1);
      bool octal = p.size() == 3 &&
                   std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '7'; });
      if (!octal) return Bad(perms_key, "not octal file permissions such as 0644 or 0400");
      t.perms = *v;
    }
    std::string command_key = absl::StrCat(Av(kCommandPrefix), raw);
    if (const std::string* v = r.Find(command_key); v != nullptr && !v->empty()) {
      if (v->size() > kMaxCommandBytes || v->find('\0') != std::string::npos) {
        return Bad(command_key, "longer than 4096 bytes or holds a NUL byte");
      }
      t.command = *v;
    }
    RETURN_IF_ERROR(r.Bool(absl::StrCat(Av(kMissingKeyPrefix), raw), &t.error_on_missing_key));
    s.secrets.push_back(std::move(t));
  }
  std::sort(s.secrets.begin(), s.secrets.end(),
            [](const SecretTemplate& a, const SecretTemplate& b) { return a.name < b.name; });

  // 5. Warnings for what was not read: per-secret annotations without their secret, the
  // injector's tuning annotations strongroom ignores, and unknown names.
  for (const auto& [suffix_key, value] : r.ours()) {
    const std::string& suffix = suffix_key;  // (clang cannot capture a structured binding)
    if (r.Used(suffix) || InList(kSupported, suffix)) continue;
    bool per_secret = std::any_of(std::begin(kPerSecretPrefixes), std::end(kPerSecretPrefixes),
                                  [suffix](std::string_view p) { return StartsWith(suffix, p); });
    if (per_secret) {
      if (IsBlank(value)) continue;  // a blank secret or template declares nothing, as in Vault
      s.warnings.push_back(
          absl::StrCat(Key(suffix), ": ignored, no agent-inject-secret or template of that name"));
    } else if (InList(kIgnored, suffix) || StartsWith(suffix, kTelemetryPrefix)) {
      s.warnings.push_back(absl::StrCat(Key(suffix), ": ignored, not supported by strongroom"));
    } else {
      s.warnings.push_back(absl::StrCat(Key(suffix), ": unknown annotation, ignored"));
    }
  }
  return decision;
}

}  // namespace strongroom::injector
