#include "cli/agent/config.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "appliance/core/json.h"
#include "base/hcl.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::agent {
namespace {

// One stanza's settings, from an HCL block or an object value (JSON, or `config = { ... }`).
// Entries keep their key, position and either a value or a nested block.
class Section {
 public:
  struct Entry {
    std::string key;
    hcl::Position pos;
    const hcl::Value* value = nullptr;
    const hcl::Block* block = nullptr;
  };

  Section(std::string path, const hcl::Body& body) : path_(std::move(path)) {
    for (const auto& a : body.attributes) entries_.push_back({a.key, a.pos, &a.value, nullptr});
    for (const auto& b : body.blocks) entries_.push_back({b.type, b.pos, nullptr, &b});
  }
  Section(std::string path, const hcl::Block& block) : path_(std::move(path)), pos_(block.pos) {
    if (!block.labels.empty()) label_ = block.labels.front();
    labels_ = block.labels.size();
    for (const auto& a : block.attributes) entries_.push_back({a.key, a.pos, &a.value, nullptr});
    for (const auto& b : block.blocks) entries_.push_back({b.type, b.pos, nullptr, &b});
  }
  Section(std::string path, const hcl::Value& object) : path_(std::move(path)), pos_(object.pos) {
    for (const auto& [k, v] : object.object) entries_.push_back({k, v.pos, &v, nullptr});
  }

  const std::string& label() const { return label_; }
  size_t label_count() const { return labels_; }
  const std::string& path() const { return path_; }
  hcl::Position pos() const { return pos_; }

  absl::Status Error(hcl::Position pos, std::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(hcl::Where(pos), ": ", Av(message)));
  }

  // Every stanza under `key`: blocks, an object value, or a list of objects.
  absl::StatusOr<std::vector<Section>> Children(std::string_view key) {
    std::vector<Section> out;
    for (const Entry& e : entries_) {
      if (e.key != key) continue;
      used_.insert(e.key);
      const std::string child_path = absl::StrCat(path_, path_.empty() ? "" : ".", Av(key));
      if (e.block != nullptr) {
        out.emplace_back(child_path, *e.block);
      } else if (e.value->kind == hcl::Value::Kind::kObject) {
        out.emplace_back(child_path, *e.value);
      } else if (e.value->kind == hcl::Value::Kind::kList) {
        for (const hcl::Value& item : e.value->list) {
          if (item.kind != hcl::Value::Kind::kObject) {
            return Error(item.pos, absl::StrCat(child_path, ": expected an object"));
          }
          out.emplace_back(child_path, item);
        }
      } else {
        return Error(e.pos, absl::StrCat(child_path, ": expected a block or an object"));
      }
    }
    return out;
  }

  // At most one stanza under `key`.
  absl::StatusOr<std::optional<Section>> Child(std::string_view key) {
    auto all = Children(key);
    if (!all.ok()) return all.status();
    if (all->size() > 1) {
      return Error((*all)[1].pos(), absl::StrCat(Full(key), ": given more than once"));
    }
    if (all->empty()) return std::optional<Section>();
    return std::optional<Section>(std::move(all->front()));
  }

  // The one scalar value under `key`, or nullptr.
  absl::StatusOr<const hcl::Value*> Scalar(std::string_view key) {
    const Entry* found = nullptr;
    for (const Entry& e : entries_) {
      if (e.key != key) continue;
      used_.insert(e.key);
      if (found != nullptr) return Error(e.pos, absl::StrCat(Full(key), ": given more than once"));
      if (e.block != nullptr || e.value->kind == hcl::Value::Kind::kObject ||
          e.value->kind == hcl::Value::Kind::kList) {
        return Error(e.pos, absl::StrCat(Full(key), ": expected a single value"));
      }
      found = &e;
    }
    return found == nullptr ? nullptr : found->value;
  }

  // A string (numbers and booleans are taken as written, as Vault's mapstructure decoding
  // with weak typing does).
  absl::Status String(std::string_view key, std::string* out) {
    auto v = Scalar(key);
    if (!v.ok()) return v.status();
    if (*v == nullptr) return absl::OkStatus();
    if ((*v)->kind == hcl::Value::Kind::kBool) {
      *out = (*v)->boolean ? "true" : "false";
    } else {
      *out = (*v)->str;
    }
    return absl::OkStatus();
  }

  // A boolean: true/false, or a string strconv.ParseBool accepts.
  absl::Status Bool(std::string_view key, bool* out) {
    auto v = Scalar(key);
    if (!v.ok()) return v.status();
    if (*v == nullptr) return absl::OkStatus();
    if ((*v)->kind == hcl::Value::Kind::kBool) {
      *out = (*v)->boolean;
      return absl::OkStatus();
    }
    if (((*v)->kind == hcl::Value::Kind::kString || (*v)->kind == hcl::Value::Kind::kNumber) &&
        ParseGoBool((*v)->str, out)) {
      return absl::OkStatus();
    }
    return Error((*v)->pos, absl::StrCat(Full(key), ": expected a boolean"));
  }

  // A duration: seconds as a number, or "90s", "5m", "1h30m".
  absl::Status Duration(std::string_view key, absl::Duration* out) {
    auto v = Scalar(key);
    if (!v.ok()) return v.status();
    if (*v == nullptr) return absl::OkStatus();
    auto secs = core::ParseDurationSeconds((*v)->str);
    if ((*v)->kind == hcl::Value::Kind::kBool || !secs.ok()) {
      return Error((*v)->pos, absl::StrCat(Full(key), ": expected a duration such as \"5m\""));
    }
    *out = absl::Seconds(*secs);
    return absl::OkStatus();
  }

  // A file mode: an octal string ("0640"), or a number (the mode's value, as HCL1 reads 0640).
  absl::Status Mode(std::string_view key, std::optional<uint32_t>* out) {
    auto v = Scalar(key);
    if (!v.ok()) return v.status();
    if (*v == nullptr) return absl::OkStatus();
    uint32_t mode = 0;
    bool ok = false;
    if ((*v)->kind == hcl::Value::Kind::kString) {
      const std::string& s = (*v)->str;
      ok = !s.empty() && s.size() <= 4 && s.find_first_not_of("01234567") == std::string::npos;
      for (char c : s) mode = mode * 8 + static_cast<uint32_t>(c - '0');
    } else if ((*v)->kind == hcl::Value::Kind::kNumber) {
      int64_t n = 0;
      ok = absl::SimpleAtoi(Av((*v)->str), &n) && n >= 0 && n <= 07777;
      mode = static_cast<uint32_t>(n);
    }
    if (!ok) {
      return Error((*v)->pos,
                   absl::StrCat(Full(key), ": expected an octal file mode such as \"0640\""));
    }
    *out = mode;
    return absl::OkStatus();
  }

  // Every scalar entry as a string (a method's `config` map).
  absl::Status StringMap(std::map<std::string, std::string, std::less<>>* out) {
    for (const Entry& e : entries_) {
      std::string value;
      if (absl::Status s = String(e.key, &value); !s.ok()) return s;
      (*out)[e.key] = value;
    }
    return absl::OkStatus();
  }

  // Fails on the first entry no reader asked for, naming it; `warn` lists stanzas Vault Agent
  // has that change nothing here (logged), `unsupported` those strongroom does not implement.
  absl::Status Leftovers(const std::set<std::string_view>& warn,
                         const std::set<std::string_view>& unsupported,
                         std::vector<std::string>* warnings) {
    for (const Entry& e : entries_) {
      if (used_.count(e.key)) continue;
      if (warn.count(e.key)) {
        warnings->push_back(absl::StrCat(hcl::Where(e.pos), ": ", Full(e.key),
                                         " is accepted and ignored by strongroom agent"));
        continue;
      }
      if (unsupported.count(e.key)) {
        return Error(e.pos, absl::StrCat(Full(e.key), ": Vault Agent's \"", e.key,
                                         "\" is not supported by strongroom agent"));
      }
      return Error(e.pos, absl::StrCat(Full(e.key), ": unknown key"));
    }
    return absl::OkStatus();
  }

 private:
  std::string Full(std::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", Av(key));
  }

  std::string path_;
  hcl::Position pos_;
  std::string label_;
  size_t labels_ = 0;
  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> used_;
};

absl::StatusOr<VaultSettings> ParseVault(Section s, std::vector<std::string>* warnings) {
  VaultSettings v;
  RETURN_IF_ERROR(s.String("address", &v.address));
  RETURN_IF_ERROR(s.String("ca_cert", &v.ca_cert));
  RETURN_IF_ERROR(s.String("ca_path", &v.ca_path));
  RETURN_IF_ERROR(s.String("client_cert", &v.client_cert));
  RETURN_IF_ERROR(s.String("client_key", &v.client_key));
  RETURN_IF_ERROR(s.String("tls_server_name", &v.tls_server_name));
  RETURN_IF_ERROR(s.Bool("tls_skip_verify", &v.tls_skip_verify));
  RETURN_IF_ERROR(s.Leftovers({"retry"}, {"namespace"}, warnings));
  return v;
}

absl::StatusOr<AuthMethod> ParseMethod(Section s, std::vector<std::string>* warnings) {
  AuthMethod m;
  RETURN_IF_ERROR(s.String("type", &m.type));
  if (s.label_count() > 1) return s.Error(s.pos(), "auto_auth.method: at most one label");
  if (!s.label().empty()) {
    if (!m.type.empty() && m.type != s.label()) {
      return s.Error(s.pos(), "auto_auth.method: the label and `type` differ");
    }
    m.type = s.label();
  }
  if (m.type != "kubernetes" && m.type != "approle" && m.type != "token_file") {
    return s.Error(s.pos(), m.type.empty()
                                ? "auto_auth.method: no type (kubernetes, approle or token_file)"
                                : absl::StrCat("auto_auth.method: type \"", m.type,
                                               "\" is not supported (kubernetes, approle, "
                                               "token_file)"));
  }
  RETURN_IF_ERROR(s.String("mount_path", &m.mount_path));
  if (m.mount_path.empty()) m.mount_path = absl::StrCat("auth/", m.type);
  RETURN_IF_ERROR(s.String("namespace", &m.namespace_));
  if (!m.namespace_.empty()) {
    return s.Error(s.pos(), "auto_auth.method.namespace: namespaces are not supported");
  }
  RETURN_IF_ERROR(s.Duration("min_backoff", &m.min_backoff));
  RETURN_IF_ERROR(s.Duration("max_backoff", &m.max_backoff));
  RETURN_IF_ERROR(s.Bool("exit_on_err", &m.exit_on_err));
  RETURN_IF_ERROR(s.Duration("wrap_ttl", &m.wrap_ttl));
  if (m.min_backoff < absl::Milliseconds(100) || m.max_backoff < m.min_backoff) {
    return s.Error(s.pos(), "auto_auth.method: need 100ms <= min_backoff <= max_backoff");
  }
  auto config = s.Child("config");
  if (!config.ok()) return config.status();
  std::set<std::string_view> known;
  if (m.type == "kubernetes") known = {"role", "token_path"};
  if (m.type == "approle") {
    known = {"role_id_file_path", "secret_id_file_path", "remove_secret_id_file_after_reading"};
  }
  if (m.type == "token_file") known = {"token_file_path"};
  if (*config) {
    RETURN_IF_ERROR((*config)->StringMap(&m.config));
    for (const auto& [k, v] : m.config) {
      if (!known.count(k)) {
        return s.Error((*config)->pos(), absl::StrCat("auto_auth.method.config: unknown key \"", k,
                                                      "\" for ", m.type));
      }
    }
  }
  auto need = [&](std::string_view key) -> absl::Status {
    if (m.config.count(key) && !m.config.find(key)->second.empty()) return absl::OkStatus();
    return s.Error(s.pos(),
                   absl::StrCat("auto_auth.method.config: ", m.type, " needs \"", Av(key), "\""));
  };
  if (m.type == "kubernetes") {
    RETURN_IF_ERROR(need("role"));
    if (!m.config.count("token_path")) {
      m.config["token_path"] = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    }
  } else if (m.type == "approle") {
    RETURN_IF_ERROR(need("role_id_file_path"));
  } else {
    RETURN_IF_ERROR(need("token_file_path"));
  }
  RETURN_IF_ERROR(s.Leftovers({}, {"max_retries"}, warnings));
  return m;
}

absl::StatusOr<FileSink> ParseSink(Section s, std::vector<std::string>* warnings) {
  std::string type;
  RETURN_IF_ERROR(s.String("type", &type));
  if (!s.label().empty()) type = s.label();
  if (type != "file") {
    return s.Error(s.pos(), absl::StrCat("auto_auth.sink: type \"", type,
                                         "\" is not supported (only \"file\")"));
  }
  FileSink sink;
  auto config = s.Child("config");
  if (!config.ok()) return config.status();
  if (*config) {
    Section& c = **config;
    RETURN_IF_ERROR(c.String("path", &sink.path));
    std::optional<uint32_t> mode;
    RETURN_IF_ERROR(c.Mode("mode", &mode));
    if (mode) sink.mode = *mode;
    RETURN_IF_ERROR(c.Leftovers({}, {"uid", "gid"}, warnings));
  }
  if (sink.path.empty()) return s.Error(s.pos(), "auto_auth.sink.config: needs \"path\"");
  RETURN_IF_ERROR(s.Duration("wrap_ttl", &sink.wrap_ttl));
  RETURN_IF_ERROR(
      s.Leftovers({}, {"dh_type", "dh_path", "aad", "aad_env_var", "derive_key"}, warnings));
  return sink;
}

absl::StatusOr<TemplateSpec> ParseTemplate(Section s, std::vector<std::string>* warnings) {
  TemplateSpec t;
  RETURN_IF_ERROR(s.String("source", &t.source));
  auto contents = s.Scalar("contents");
  if (!contents.ok()) return contents.status();
  if (*contents != nullptr) {
    t.contents = (*contents)->str;
    t.has_contents = true;
  }
  RETURN_IF_ERROR(s.String("destination", &t.destination));
  RETURN_IF_ERROR(s.Mode("perms", &t.perms));
  RETURN_IF_ERROR(s.String("command", &t.command));
  RETURN_IF_ERROR(s.Duration("command_timeout", &t.command_timeout));
  RETURN_IF_ERROR(s.Bool("error_on_missing_key", &t.error_on_missing_key));
  RETURN_IF_ERROR(s.Bool("create_dest_dirs", &t.create_dest_dirs));
  RETURN_IF_ERROR(s.String("left_delimiter", &t.left_delimiter));
  RETURN_IF_ERROR(s.String("right_delimiter", &t.right_delimiter));
  RETURN_IF_ERROR(s.Leftovers(
      {"wait"}, {"exec", "backup", "sandbox_path", "function_denylist", "user", "group"},
      warnings));
  return t;
}

absl::StatusOr<TemplateSettings> ParseTemplateConfig(Section s,
                                                     std::vector<std::string>* warnings) {
  TemplateSettings t;
  RETURN_IF_ERROR(s.Duration("static_secret_render_interval", &t.static_secret_render_interval));
  RETURN_IF_ERROR(s.Bool("exit_on_retry_failure", &t.exit_on_retry_failure));
  if (t.static_secret_render_interval < absl::Seconds(1)) {
    return s.Error(s.pos(), "template_config.static_secret_render_interval: at least 1s");
  }
  RETURN_IF_ERROR(
      s.Leftovers({"max_connections_per_host", "lease_renewal_threshold"}, {}, warnings));
  return t;
}

}  // namespace

absl::StatusOr<AgentConfig> ParseConfig(std::string_view text, std::string_view origin) {
  auto body = hcl::Parse(text);
  if (!body.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Av(origin), ": ", body.status().message()));
  }
  auto parse = [&]() -> absl::StatusOr<AgentConfig> {
    AgentConfig c;
    Section top("", *body);
    auto vault = top.Child("vault");
    if (!vault.ok()) return vault.status();
    if (*vault) {
      auto v = ParseVault(std::move(**vault), &c.warnings);
      if (!v.ok()) return v.status();
      c.vault = std::move(*v);
    }
    auto auto_auth = top.Child("auto_auth");
    if (!auto_auth.ok()) return auto_auth.status();
    if (*auto_auth) {
      Section& aa = **auto_auth;
      auto methods = aa.Children("method");
      if (!methods.ok()) return methods.status();
      if (methods->size() != 1) {
        return aa.Error(aa.pos(), "auto_auth: needs exactly one method");
      }
      auto m = ParseMethod(std::move(methods->front()), &c.warnings);
      if (!m.ok()) return m.status();
      c.method = std::move(*m);
      auto sinks = aa.Children("sink");
      if (!sinks.ok()) return sinks.status();
      for (Section& s : *sinks) {
        auto sink = ParseSink(std::move(s), &c.warnings);
        if (!sink.ok()) return sink.status();
        c.sinks.push_back(std::move(*sink));
      }
      RETURN_IF_ERROR(aa.Leftovers({}, {"enable_reauth_on_new_credentials"}, &c.warnings));
    }
    auto templates = top.Children("template");
    if (!templates.ok()) return templates.status();
    for (Section& s : *templates) {
      auto t = ParseTemplate(std::move(s), &c.warnings);
      if (!t.ok()) return t.status();
      c.templates.push_back(std::move(*t));
    }
    auto tc = top.Child("template_config");
    if (!tc.ok()) return tc.status();
    if (*tc) {
      auto t = ParseTemplateConfig(std::move(**tc), &c.warnings);
      if (!t.ok()) return t.status();
      c.template_config = *t;
    }
    RETURN_IF_ERROR(top.Bool("exit_after_auth", &c.exit_after_auth));
    RETURN_IF_ERROR(top.String("pid_file", &c.pid_file));
    RETURN_IF_ERROR(
        top.Leftovers({"telemetry", "log_level", "log_file", "log_format", "log_rotate_bytes",
                       "log_rotate_duration", "log_rotate_max_files", "disable_idle_connections",
                       "disable_keep_alives"},
                      {"cache", "listener", "api_proxy", "env_template", "exec",
                       "auto_auth_listener", "template_retry"},
                      &c.warnings));
    return c;
  };
  auto config = parse();
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Av(origin), ": ", config.status().message()));
  }
  return config;
}

absl::Status MergeConfig(AgentConfig& into, AgentConfig next) {
  auto take = [](std::string& a, std::string& b) {
    if (!b.empty()) a = std::move(b);
  };
  take(into.vault.address, next.vault.address);
  take(into.vault.ca_cert, next.vault.ca_cert);
  take(into.vault.ca_path, next.vault.ca_path);
  take(into.vault.client_cert, next.vault.client_cert);
  take(into.vault.client_key, next.vault.client_key);
  take(into.vault.tls_server_name, next.vault.tls_server_name);
  into.vault.tls_skip_verify = into.vault.tls_skip_verify || next.vault.tls_skip_verify;
  if (next.method) {
    if (into.method) return absl::InvalidArgumentError("auto_auth: more than one method");
    into.method = std::move(next.method);
  }
  for (auto& s : next.sinks) into.sinks.push_back(std::move(s));
  for (auto& t : next.templates) into.templates.push_back(std::move(t));
  into.template_config = next.template_config;
  into.exit_after_auth = into.exit_after_auth || next.exit_after_auth;
  take(into.pid_file, next.pid_file);
  for (auto& w : next.warnings) into.warnings.push_back(std::move(w));
  return absl::OkStatus();
}

absl::Status ValidateConfig(const AgentConfig& c) {
  if (!c.method && (!c.templates.empty() || !c.sinks.empty())) {
    return absl::InvalidArgumentError("templates and sinks need an auto_auth method");
  }
  if (!c.method) return absl::InvalidArgumentError("nothing to do: no auto_auth and no template");
  if (c.method->wrap_ttl > absl::ZeroDuration()) {
    if (c.sinks.size() != 1) {
      return absl::InvalidArgumentError(
          "error parsing auto_auth: wrapping enabled on auth method and 0 or many sinks defined");
    }
    if (c.sinks[0].wrap_ttl > absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "error parsing auto_auth: wrapping enabled both on auth method and sink");
    }
    if (!c.templates.empty()) {
      return absl::InvalidArgumentError(
          "auto_auth uses wrapping (method wrap_ttl): the agent cannot use the wrapped token, so "
          "it cannot render templates; wrap in the sink (sink wrap_ttl) instead");
    }
    if (c.method->type == "token_file") {
      return absl::InvalidArgumentError(
          "auto_auth.method.wrap_ttl: the token_file method has no login to wrap; wrap in the "
          "sink (sink wrap_ttl) instead");
    }
  }
  std::set<std::string> destinations;
  for (size_t i = 0; i < c.templates.size(); ++i) {
    const TemplateSpec& t = c.templates[i];
    const std::string which = absl::StrCat("template ", i + 1);
    if (t.destination.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(which, ": no destination"));
    }
    if (!destinations.insert(t.destination).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, ": destination \"", t.destination, "\" is used twice"));
    }
    if (t.source.empty() == !t.has_contents) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, ": give exactly one of source and contents"));
    }
    if (t.left_delimiter.empty() || t.right_delimiter.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(which, ": empty delimiter"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strongroom::agent
