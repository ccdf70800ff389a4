#include "cli/injector/agent_check.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/strings.h"
#include "cli/agent/config.h"
#include "cli/template/template.h"
#include "client/http.h"

namespace strongroom::injector {
namespace {

// NAME_MAX of Linux file systems: the agent writes "<dir>/<name>" through a temporary file of
// fixed length in the same directory.
constexpr size_t kMaxFileNameBytes = 255;

absl::Status Refuse(std::string_view what, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("the agent would refuse its configuration: ", Av(what), ": ", Av(why)));
}

}  // namespace

absl::Status CheckAgentAccepts(std::string_view config_json) {
  auto config = agent::ParseConfig(config_json, "configuration");
  if (!config.ok()) return Refuse("configuration", Sv(config.status().message()));
  if (absl::Status s = agent::ValidateConfig(*config); !s.ok()) {
    return Refuse("configuration", Sv(s.message()));
  }
  if (auto url = http::ParseUrl(config->vault.address, "address", /*allow_http=*/true); !url.ok()) {
    return Refuse("vault address", Sv(url.status().message()));
  }
  const std::set<std::string, std::less<>> functions = {"secret"};
  for (const agent::TemplateSpec& t : config->templates) {
    const size_t slash = t.destination.find_last_of('/');
    const std::string_view name = slash == std::string::npos
                                      ? std::string_view(t.destination)
                                      : std::string_view(t.destination).substr(slash + 1);
    if (name.empty() || name.size() > kMaxFileNameBytes) {
      return Refuse(absl::StrCat("template for ", t.destination.size() > 300
                                                      ? t.destination.substr(0, 300) + "..."
                                                      : t.destination),
                    "the file name is empty or longer than 255 bytes");
    }
    tmpl::Options options;
    options.left_delim = t.left_delimiter;
    options.right_delim = t.right_delimiter;
    options.error_on_missing_key = t.error_on_missing_key;
    auto parsed = tmpl::Template::Parse(t.destination, t.contents, options, functions);
    if (!parsed.ok()) return Refuse("template", Sv(parsed.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace strongroom::injector
