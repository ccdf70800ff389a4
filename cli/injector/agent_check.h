// What the injector checks before it answers a patch: that the agents it adds can start. The
// agent configuration it generated is read by the agent's own parser (cli/agent/config.h) and
// validator, every template by the agent's template parser, the server address by the client's
// URL parser, and every destination file name against what the file system takes. A pod whose
// agents would fail at start is refused at admission instead, with the reason.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace strongroom::injector {

// InvalidArgument with a message for the admission answer (never a template or annotation
// value: the parsers' messages name positions and keys only).
absl::Status CheckAgentAccepts(std::string_view config_json);

}  // namespace strongroom::injector
