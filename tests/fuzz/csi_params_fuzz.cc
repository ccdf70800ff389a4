// libFuzzer target for the CSI provider's parameter parsing (cli/csi/params.h): the attributes
// JSON of a MountRequest (which any namespace user shapes through a SecretProviderClass) and the
// `objects` YAML inside it. The first byte picks the input: even, the bytes are `objects` YAML
// alone; odd, they are the attributes JSON (whose `objects` is YAML again). Besides crashes,
// leaks, UB and stack exhaustion (ASan/UBSan: yaml-cpp is recursive), it checks the promises the
// provider relies on: a parse that succeeds keeps every bound (object count, unique and safe
// object names, methods, modes, the secretArgs size), every error is InvalidArgument, and an
// error never repeats the driver's service-account tokens.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "appliance/core/json.h"
#include "cli/csi/params.h"

namespace {

using strongroom::csi::ObjectSpec;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "csi_params_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

void CheckObjects(const std::vector<ObjectSpec>& objects) {
  Check(objects.size() <= strongroom::csi::kMaxObjects, "object count");
  for (const ObjectSpec& o : objects) {
    Check(strongroom::csi::CheckObjectName(o.object_name).ok(), "object names are safe paths");
    Check(!o.secret_path.empty() && o.secret_path.size() <= strongroom::csi::kMaxFieldBytes,
          "secretPath set and bounded");
    Check(o.method == "GET" || o.method == "PUT" || o.method == "POST", "method");
    Check(o.file_permission <= 0777, "mode");
    Check(!o.canonical.empty() && o.canonical.front() == '{', "canonical configuration");
    if (o.secret_args) {
      Check(strongroom::core::Serialize(*o.secret_args).size() <=
                2 * strongroom::csi::kMaxSecretArgsBytes,
            "secretArgs bounded");
    }
  }
}

// The driver's service-account tokens (a value of the attributes) never come back in an error.
void CheckTokensNotEchoed(std::string_view attributes, std::string_view message) {
  auto parsed = strongroom::core::ParseObject(attributes, 8);
  if (!parsed.ok()) return;
  auto it = parsed->find("csi.storage.k8s.io/serviceAccount.tokens");
  if (it == parsed->end() || !it->value().is_string()) return;
  const std::string_view tokens = it->value().as_string();
  if (tokens.size() < 12) return;
  Check(message.find(tokens) == std::string_view::npos, "an error repeats the tokens");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto objects = strongroom::csi::ParseObjects(input);
    if (objects.ok()) {
      CheckObjects(*objects);
    } else {
      Check(absl::IsInvalidArgument(objects.status()), "errors are InvalidArgument");
    }
    return 0;
  }
  auto params = strongroom::csi::ParseMountRequest(input, "/target", "420");
  if (params.ok()) {
    Check(!params->role_name.empty(), "roleName required");
    Check(!params->objects.empty(), "at least one object");
    CheckObjects(params->objects);
    std::set<std::string> names;
    for (const ObjectSpec& o : params->objects) {
      Check(names.insert(o.object_name).second, "unique object names");
    }
  } else {
    Check(absl::IsInvalidArgument(params.status()), "errors are InvalidArgument");
    CheckTokensNotEchoed(input, std::string(params.status().message()));
  }
  return 0;
}
