// libFuzzer target for the JSON limits scan (appliance/core/json_limits.h), which the worker and
// the broker run on hostile bodies before Boost.JSON parses them. Besides crashes, leaks and UB
// (ASan/UBSan), it checks the two promises callers rely on:
//  - the scan never calls not-JSON what Boost.JSON accepts (so nothing reaches the parser
//    unchecked);
//  - a body the scan passes, parsed, is within the limits: depth, one string's length, one
//    object's entries, one array's elements, the number of strings and the memory estimate
//    (computed here again on the parsed values, independently of the scan).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "appliance/core/json.h"
#include "appliance/core/json_limits.h"

namespace {

namespace json = boost::json;
using strongroom::core::CheckJsonLimits;
using strongroom::core::JsonLimit;
using strongroom::core::JsonLimits;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "json_limits_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

JsonLimits Unlimited() {
  JsonLimits l;
  l.max_depth = 1000;
  l.max_string_length = UINT64_MAX / 4;
  l.max_object_entries = UINT64_MAX / 4;
  l.max_array_elements = UINT64_MAX / 4;
  l.max_memory = UINT64_MAX / 4;
  l.max_strings = UINT64_MAX / 4;
  return l;
}

JsonLimits Small() {
  JsonLimits l;
  l.max_depth = 6;
  l.max_string_length = 12;
  l.max_object_entries = 4;
  l.max_array_elements = 5;
  l.max_memory = 2048;
  l.max_strings = 16;
  return l;
}

struct Totals {
  uint64_t strings = 0;
  uint64_t memory = 0;
};

// Walks the parsed value (depth is bounded by the parser's max_depth) and checks the per-value
// limits; the totals are checked by the caller.
void Walk(const json::value& v, unsigned depth, const JsonLimits& l, Totals* t) {
  using strongroom::core::kJsonContainerCost;
  using strongroom::core::kJsonEntryCost;
  using strongroom::core::kJsonValueCost;
  t->memory += kJsonValueCost;
  if (v.is_string()) {
    Check(v.as_string().size() <= l.max_string_length, "string value within its length");
    ++t->strings;
    t->memory += v.as_string().size();
  } else if (v.is_array()) {
    Check(depth + 1 <= l.max_depth, "depth within the limit");
    Check(v.as_array().size() <= l.max_array_elements, "array within its element count");
    t->memory += kJsonContainerCost;
    for (const json::value& e : v.as_array()) Walk(e, depth + 1, l, t);
  } else if (v.is_object()) {
    Check(depth + 1 <= l.max_depth, "depth within the limit");
    Check(v.as_object().size() <= l.max_object_entries, "object within its entry count");
    t->memory += kJsonContainerCost;
    for (const auto& kv : v.as_object()) {
      Check(kv.key().size() <= l.max_string_length, "key within the string length");
      ++t->strings;
      t->memory += kJsonEntryCost + kv.key().size();
      Walk(kv.value(), depth + 1, l, t);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json::parse_options opts;
  opts.max_depth = 1000;
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec, {}, opts);
  const bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (!ec) Check(CheckJsonLimits(text, Unlimited()) != JsonLimit::kSyntax, "never stricter");
  const JsonLimits small = Small();
  if (!ec && !blank && CheckJsonLimits(text, small) == JsonLimit::kNone) {
    Totals t;
    Walk(parsed, 0, small, &t);
    Check(t.strings <= small.max_strings, "strings within their number");
    Check(t.memory <= small.max_memory, "memory within the estimate");
  }
  return 0;
}
