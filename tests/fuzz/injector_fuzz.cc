// libFuzzer target for the injector's mutation (cli/injector/mutate.h), whose input is an
// AdmissionReview from the API server carrying anyone's pod spec and annotations. Besides
// crashes, leaks, UB and stack exhaustion (ASan/UBSan), it checks that every answer is JSON,
// that a patch is a base64 JSON array, and that every agent configuration the injector writes
// into a container's VAULT_CONFIG is one `strongroom agent` accepts (ParseConfig and
// ValidateConfig): the injector never produces a pod whose agents cannot start.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "cli/agent/config.h"
#include "cli/injector/mutate.h"

namespace {

namespace json = boost::json;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "injector_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// Every VAULT_CONFIG in the containers an "add" operation puts in place.
void CheckAgentConfigs(const json::value& v, int depth) {
  Check(depth < 64, "patch nesting");
  if (v.is_array()) {
    for (const json::value& e : v.as_array()) CheckAgentConfigs(e, depth + 1);
    return;
  }
  if (!v.is_object()) return;
  const json::object& o = v.as_object();
  auto name = o.find("name");
  auto value = o.find("value");
  if (name != o.end() && value != o.end() && name->value() == "VAULT_CONFIG" &&
      value->value().is_string()) {
    std::string decoded;
    Check(absl::Base64Unescape(std::string(value->value().as_string()), &decoded),
          "VAULT_CONFIG is base64");
    auto config = strongroom::agent::ParseConfig(decoded, "$VAULT_CONFIG");
    Check(config.ok(), "the agent parses the injector's configuration");
    Check(strongroom::agent::ValidateConfig(*config).ok(),
          "the agent accepts the injector's configuration");
    return;
  }
  for (const auto& [k, e] : o) CheckAgentConfigs(e, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  strongroom::injector::InjectorDefaults defaults;
  defaults.vault_address = "https://strongroom.strongroom.svc:8200";
  defaults.agent_image = "strongroom:fuzz";
  auto result = strongroom::injector::Mutate(
      std::string_view(reinterpret_cast<const char*>(data), size), defaults);
  if (!result.ok()) return 0;
  boost::system::error_code ec;
  json::value answer = json::parse(result->response, ec);
  Check(!ec && answer.is_object(), "the answer is a JSON object");
  const json::value* patch = answer.as_object().contains("response")
                                 ? answer.at("response").as_object().if_contains("patch")
                                 : nullptr;
  Check(!(result->injected && patch == nullptr), "an injection carries a patch");
  if (patch != nullptr) {
    Check(patch->is_string(), "the patch is a string");
    std::string ops;
    Check(absl::Base64Unescape(std::string(patch->as_string()), &ops), "the patch is base64");
    json::value parsed = json::parse(ops, ec);
    Check(!ec && parsed.is_array(), "the patch is a JSON array");
    CheckAgentConfigs(parsed, 0);
  }
  return 0;
}
