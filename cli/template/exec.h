// Executor of a parsed template (Go text/template's exec.go semantics over JSON values).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cli/template/parse.h"
#include "cli/template/template.h"

namespace strongroom::tmpl {

// Depth of template calls ({{template "x"}}) and of the executor's recursion overall.
inline constexpr int kMaxTemplateDepth = 100;
inline constexpr int kMaxExecDepth = 1000;

absl::StatusOr<std::string> ExecuteTree(const Tree& tree, const json::value& dot,
                                        const FunctionMap& functions, const Options& options);

}  // namespace strongroom::tmpl
