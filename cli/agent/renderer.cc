#include "cli/agent/renderer.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/strings.h"
#include "cli/agent/files.h"

namespace strongroom::agent {
namespace {

namespace json = boost::json;

constexpr size_t kMaxTemplateBytes = 1 << 20;
// One render reads at most this many distinct secrets (a template looping over `secret` calls
// cannot turn one render into unbounded requests).
constexpr size_t kMaxSecretsPerRender = 128;

}  // namespace

json::value SecretValue(const client::Secret& secret) {
  json::object o;
  o["RequestID"] = secret.request_id;
  o["LeaseID"] = secret.lease_id;
  o["LeaseDuration"] = secret.lease_duration;
  o["Renewable"] = secret.renewable;
  o["Data"] = secret.data;
  json::array warnings;
  for (const std::string& w : secret.warnings) warnings.emplace_back(w);
  o["Warnings"] = warnings.empty() ? json::value(nullptr) : json::value(std::move(warnings));
  return o;
}

absl::StatusOr<std::unique_ptr<TemplateRenderer>> TemplateRenderer::Create(
    const TemplateSpec& spec, const TemplateSettings& settings) {
  std::string text = spec.contents;
  if (!spec.has_contents) {
    auto read = ReadFileBounded(spec.source, kMaxTemplateBytes);
    if (!read.ok()) {
      return absl::Status(read.status().code(), absl::StrCat("template ", spec.destination, ": ",
                                                             read.status().message()));
    }
    text = std::move(*read);
  }
  tmpl::Options options;
  options.left_delim = spec.left_delimiter;
  options.right_delim = spec.right_delimiter;
  options.error_on_missing_key = spec.error_on_missing_key;
  auto t = tmpl::Template::Parse(spec.destination, text, options, {"secret"});
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("template ", spec.destination, ": ", t.status().message()));
  }
  return std::unique_ptr<TemplateRenderer>(new TemplateRenderer(spec, settings, std::move(*t)));
}

absl::StatusOr<RenderResult> TemplateRenderer::Render(client::Client& client) {
  absl::Duration next = settings_.static_secret_render_interval;
  absl::Status refused;  // the server's error, kept apart from the template's wording
  std::map<std::string, json::value> fetched;
  tmpl::FunctionMap functions;
  functions["secret"] = [&](std::span<const json::value> args) -> absl::StatusOr<json::value> {
    if (args.empty() || !args[0].is_string()) {
      return absl::InvalidArgumentError("secret: the first argument must be a path");
    }
    const std::string path(args[0].as_string());
    json::object params;
    std::string key = path;
    for (size_t i = 1; i < args.size(); ++i) {
      if (!args[i].is_string()) {
        return absl::InvalidArgumentError("secret: parameters must be \"key=value\" strings");
      }
      std::string_view kv = args[i].as_string();
      const size_t eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError("secret: parameters must be \"key=value\" strings");
      }
      params[kv.substr(0, eq)] = kv.substr(eq + 1);
      absl::StrAppend(&key, "\n", Av(kv));
    }
    if (auto it = fetched.find(key); it != fetched.end()) return it->second;
    if (fetched.size() >= kMaxSecretsPerRender) {
      return absl::ResourceExhaustedError(
          absl::StrCat("secret: more than ", kMaxSecretsPerRender, " secrets in one template"));
    }
    // consul-template: no parameters is a read, parameters make it a write (Transit encrypt).
    auto secret = args.size() == 1 ? client.Read(path) : client.Write(path, params);
    if (!secret.ok()) {
      refused = secret.status();
      return absl::Status(secret.status().code(),
                          absl::StrCat("secret \"", path, "\": ", secret.status().message()));
    }
    if (secret->data.is_null() && secret->raw.empty()) {
      return absl::NotFoundError(absl::StrCat("secret \"", path, "\": no secret at this path"));
    }
    if (!secret->lease_id.empty() && secret->lease_duration > 0) {
      next =
          std::min(next, std::max(absl::Seconds(1), absl::Seconds(secret->lease_duration) * 2 / 3));
    }
    json::value value = SecretValue(*secret);
    fetched.emplace(key, value);
    return value;
  };
  auto output = template_.Execute(json::value(nullptr), functions);
  if (!output.ok()) {
    // The server's refusal keeps its code (PermissionDenied makes the caller log in again).
    const absl::StatusCode code = refused.ok() ? output.status().code() : refused.code();
    return absl::Status(
        code, absl::StrCat("template ", spec_.destination, ": ", output.status().message()));
  }
  RenderResult result;
  result.next = next;
  auto existing = ReadFileBounded(spec_.destination, std::max<size_t>(output->size(), 1) + 1);
  if (existing.ok() && *existing == *output) return result;
  const uint32_t mode = spec_.perms ? *spec_.perms : ExistingMode(spec_.destination).value_or(0644);
  if (absl::Status s = AtomicWrite(spec_.destination, *output, mode, spec_.create_dest_dirs);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("template ", spec_.destination, ": ", s.message()));
  }
  result.changed = true;
  return result;
}

}  // namespace strongroom::agent
