// Helpers shared by the template engine's tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "cli/template/template.h"

namespace strongroom::tmpl::testing {

inline json::value Json(std::string_view text) { return json::parse(text); }

// Parses and executes; the error text (parse or execution) when either fails.
inline absl::StatusOr<std::string> Render(std::string_view text, const json::value& data = {},
                                          const Options& options = {},
                                          const FunctionMap& functions = {}) {
  std::set<std::string, std::less<>> names;
  for (const auto& [name, fn] : functions) names.insert(name);
  auto t = Template::Parse("t", text, options, names);
  if (!t.ok()) return t.status();
  return t->Execute(data, functions);
}

// The output, or "ERROR: message".
inline std::string Out(std::string_view text, const json::value& data = {},
                       const Options& options = {}, const FunctionMap& functions = {}) {
  auto r = Render(text, data, options, functions);
  if (!r.ok()) return "ERROR: " + std::string(r.status().message());
  return *r;
}

}  // namespace strongroom::tmpl::testing
