// libFuzzer target for the agent's template engine (cli/template), whose input is a template
// from a pod annotation. Besides crashes, leaks, UB and stack exhaustion (ASan/UBSan), it checks:
//  - Parse and Execute return (no hang: steps and output are bounded by small options);
//  - the output never exceeds max_output_bytes;
//  - every error is Go-formatted ("template: ...") and never contains a data value unless the
//    template text itself spells it;
//  - a copy of a parsed template executes to the same result (no shared mutable state).
// The first input byte picks the options (delimiters, missing-key mode); the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/template/template.h"

namespace {

namespace json = boost::json;
using strongroom::tmpl::FunctionMap;
using strongroom::tmpl::Options;
using strongroom::tmpl::Template;

constexpr std::string_view kMarker = "SECRETMARKER";

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "template_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

const json::value& Data() {
  static const json::value data = json::parse(
      R"({"Data":{"data":{"api_key":"SECRETMARKER-1","n":42,"f":1.5,"list":["a","SECRETMARKER-2"],)"
      R"("nested":{"k":null,"b":true}},"metadata":{"version":1}},"LeaseDuration":0,)"
      R"("LeaseID":"","Renewable":false,"Warnings":null,"s":"SECRETMARKER-3","e":[],"o":{}})");
  return data;
}

const FunctionMap& Functions() {
  static const FunctionMap fns = [] {
    FunctionMap m;
    m["secret"] = [](std::span<const json::value> args) -> absl::StatusOr<json::value> {
      if (args.empty()) return absl::InvalidArgumentError("secret needs a path");
      return Data();
    };
    m["fail"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
      return absl::PermissionDeniedError("permission denied");
    };
    return m;
  }();
  return fns;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  Options options;
  options.max_steps = 20000;
  options.max_output_bytes = 1 << 14;
  options.error_on_missing_key = (mode & 1) != 0;
  if (mode & 2) {
    options.left_delim = "[[";
    options.right_delim = "]]";
  }
  options.env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return "/home/agent";
    return std::nullopt;
  };
  auto t = Template::Parse("fuzz", text, options, {"secret", "fail"});
  const bool text_has_marker = text.find(kMarker) != std::string_view::npos;
  if (!t.ok()) {
    const std::string_view msg(t.status().message().data(), t.status().message().size());
    Check(msg.starts_with("template: fuzz"), "parse error is Go-formatted");
    return 0;
  }
  auto out = t->Execute(Data(), Functions());
  if (out.ok()) {
    Check(out->size() <= options.max_output_bytes, "output within max_output_bytes");
  } else {
    const std::string_view msg(out.status().message().data(), out.status().message().size());
    Check(msg.starts_with("template: "), "execution error is Go-formatted");
    Check(text_has_marker || msg.find(kMarker) == std::string_view::npos,
          "execution error does not contain data values");
  }
  const Template copy = *t;
  auto again = copy.Execute(Data(), Functions());
  Check(again.ok() == out.ok(), "copy executes the same way");
  if (again.ok()) Check(*again == *out, "copy renders the same output");
  return 0;
}
