// libFuzzer target for the HCL / JSON parser (base/hcl.h). Besides crashes, leaks and UB
// (ASan/UBSan), it checks the contract callers rely on: every error is InvalidArgument and
// positioned inside the document, and every accepted document yields 1-based positions and
// strings that are valid UTF-8 without NUL.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "base/hcl.h"

namespace {

using strongroom::hcl::Attribute;
using strongroom::hcl::Block;
using strongroom::hcl::Body;
using strongroom::hcl::Position;
using strongroom::hcl::Value;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "hcl_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// Independent of the parser's own decoder on purpose: shared code would share its bugs.
bool IsValidUtf8WithoutNul(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

struct Limits {
  int lines = 1;
};

void CheckPosition(const Position& pos, const Limits& limits) {
  Check(pos.line >= 1 && pos.line <= limits.lines, "line within the document");
  Check(pos.column >= 1, "column is 1-based");
}

void CheckValue(const Value& v, const Limits& limits, int depth) {
  Check(depth <= 64, "depth limit");
  CheckPosition(v.pos, limits);
  Check(IsValidUtf8WithoutNul(v.str), "string value is UTF-8 without NUL");
  for (const Value& item : v.list) CheckValue(item, limits, depth + 1);
  for (const auto& [key, item] : v.object) {
    Check(IsValidUtf8WithoutNul(key), "object key is UTF-8 without NUL");
    CheckValue(item, limits, depth + 1);
  }
}

void CheckBody(const std::vector<Attribute>& attributes, const std::vector<Block>& blocks,
               const Limits& limits, int depth) {
  Check(depth <= 64, "depth limit");
  for (const Attribute& a : attributes) {
    CheckPosition(a.pos, limits);
    Check(IsValidUtf8WithoutNul(a.key), "attribute key is UTF-8 without NUL");
    CheckValue(a.value, limits, depth);
  }
  for (const Block& b : blocks) {
    CheckPosition(b.pos, limits);
    Check(IsValidUtf8WithoutNul(b.type), "block type is UTF-8 without NUL");
    for (const std::string& label : b.labels) {
      Check(IsValidUtf8WithoutNul(label), "label is UTF-8 without NUL");
    }
    CheckBody(b.attributes, b.blocks, limits, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Limits limits;
  for (char c : text) {
    if (c == '\n') ++limits.lines;
  }
  absl::StatusOr<Body> body = strongroom::hcl::Parse(text);
  if (!body.ok()) {
    Check(body.status().code() == absl::StatusCode::kInvalidArgument, "errors are InvalidArgument");
    const std::string message(body.status().message());
    int line = 0;
    int column = 0;
    Check(std::sscanf(message.c_str(), "line %d, column %d: ", &line, &column) == 2,
          "error message starts with a position");
    CheckPosition(Position{line, column}, limits);
    return 0;
  }
  CheckBody(body->attributes, body->blocks, limits, 0);
  return 0;
}
