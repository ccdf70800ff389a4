// The functions every template has: Go text/template's builtins (builtins.cc) and the
// consul-template functions Vault Agent templates use (consul_functions.cc). The caller's own
// functions (e.g. `secret`) come from the FunctionMap given to Execute and take precedence.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/template/budget.h"
#include "cli/template/value.h"

namespace strongroom::tmpl {

struct CallContext {
  size_t max_bytes = 4 << 20;  // bound on any string or encoding a function builds
  const std::function<std::optional<std::string>(std::string_view)>* env = nullptr;
  // The run's budget; null charges nothing. A function charges the values it builds
  // (ChargeMemory) and, before doing it, work beyond reading its string arguments once (which
  // the executor charges): searches, and comparisons of many pairs.
  Budget* budget = nullptr;

  absl::Status ChargeMemory(uint64_t bytes) const {
    return budget != nullptr ? budget->ChargeMemory(bytes) : absl::OkStatus();
  }
  absl::Status ChargeWork(uint64_t bytes) const {
    return budget != nullptr ? budget->ChargeWork(bytes) : absl::OkStatus();
  }
};

using BuiltinFn = absl::StatusOr<Value> (*)(std::span<const Value> args, const CallContext& ctx);

struct Builtin {
  std::string_view name;
  BuiltinFn fn;  // null for and/or, which the executor evaluates lazily
  int min_args;
  bool variadic;  // false: exactly min_args
};

// nullptr when `name` is not a builtin.
const Builtin* FindBuiltin(std::string_view name);
// Adds the names of every builtin and consul-template function.
void AddBuiltinNames(std::set<std::string, std::less<>>* names);

// A wrong argument type is reported like Go's validateType ("wrong type for value; expected
// string; got int"), without the "error calling" prefix; the executor tells them apart by
// this code. Other errors from a function are "error calling NAME: ...".
inline absl::Status ArgTypeError(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}
inline absl::Status CallError(std::string message) {
  return absl::FailedPreconditionError(std::move(message));
}
inline bool IsArgTypeError(const absl::Status& s) { return absl::IsInvalidArgument(s); }

// Typed argument readers (Go's conversion of an argument to a string/int parameter).
absl::StatusOr<std::string_view> ArgString(const Value& v);
absl::StatusOr<int64_t> ArgInt(const Value& v);

// Go's encoding/json output of a value: compact, or indented by two spaces (MarshalIndent),
// object keys sorted, <, > and & escaped as \u003c etc.
absl::StatusOr<std::string> EncodeJson(const json::value& v, bool pretty, size_t max_bytes);

// The consul-template functions (consul_functions.cc), in the same form as the builtins.
std::span<const Builtin> ConsulFunctions();

}  // namespace strongroom::tmpl
