// Templates for `strongroom agent`: consul-template's language as Vault Agent uses it, i.e. Go
// text/template syntax and semantics over JSON data, with consul-template's functions. The
// caller registers its own functions (the agent's `secret`) by name.
//
// Parts: lexer.h (delimiters, trim markers, comments) -> parse.h (tree) -> exec.h (executor),
// functions.h (builtins and consul-template functions), value.h (values and Go's printing).
//
// Every input is hostile (a template comes from a pod annotation): the text is at most 1 MiB,
// control structures and parentheses nest at most 100 deep (parse error beyond), template
// calls at most 100 deep, and execution is bounded by Options::max_steps (work),
// Options::max_memory_bytes (values built), Options::max_duration (time) and
// Options::max_output_bytes. Error messages follow Go's wording but never contain data values.
#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::tmpl {

namespace json = boost::json;

struct Tree;

// Arguments are evaluated values; a function returns a value or an error that stops execution
// (the error text is shown to the operator: it must never contain secret values). A missing
// value (Go's "<no value>") is passed as null.
using Function = std::function<absl::StatusOr<json::value>(std::span<const json::value> args)>;
using FunctionMap = std::map<std::string, Function, std::less<>>;

struct Options {
  std::string left_delim = "{{";
  std::string right_delim = "}}";
  bool error_on_missing_key = false;  // consul-template's error_on_missing_key (missingkey=error)
  size_t max_output_bytes = 4 << 20;  // Execute fails past this; also bounds every string built
  // Bound on executed nodes + commands + range iterations, where reading, comparing, searching
  // or copying 64 bytes of data (kBytesPerStep, budget.h) also counts one step.
  uint64_t max_steps = 10'000'000;
  // Bound on the total bytes of the strings, arrays and objects one Execute builds (function
  // results, string constants, range keys, copies of arguments for the caller's functions),
  // counted as they are built and never credited back. The output is bounded on its own.
  size_t max_memory_bytes = 64 << 20;
  // Bound on the time one Execute runs, checked every kStepsPerClockCheck steps (budget.h);
  // time spent inside the caller's functions (`functions` given to Execute) is not counted.
  absl::Duration max_duration = absl::Seconds(10);
  // Looks up environment variables for `env`; when empty, getenv is used.
  std::function<std::optional<std::string>(std::string_view)> env;
};

class Template {
 public:
  // `functions`: names of the caller's functions (e.g. "secret"), known at parse time because
  // Go rejects a call to an undefined function when parsing ("function %q not defined").
  static absl::StatusOr<Template> Parse(std::string_view name, std::string_view text,
                                        const Options& options,
                                        const std::set<std::string, std::less<>>& functions);

  // Runs the template with `dot` as `.`; `functions` supplies the caller's functions by name
  // (they take precedence over builtins of the same name).
  absl::StatusOr<std::string> Execute(const json::value& dot, const FunctionMap& functions) const;

  const std::string& name() const;
  const Options& options() const { return options_; }

  // Names of the functions every template knows (Go builtins and consul-template functions).
  static std::set<std::string, std::less<>> BuiltinFunctionNames();

 private:
  Template(std::shared_ptr<const Tree> tree, Options options)
      : tree_(std::move(tree)), options_(std::move(options)) {}

  std::shared_ptr<const Tree> tree_;  // immutable, shared by copies
  Options options_;
};

}  // namespace strongroom::tmpl
