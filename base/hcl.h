// A hand-written parser for the subset of HCL (v1 syntax, as Vault reads it) that strongroom's
// server configuration and ACL policies use:
//   # comment   // comment   /* block comment */
//   key = "string" | 123 | 1.5 | true | false | [ values... ] | { key = value ... }
//   type "label" "label2" { body }          (blocks, repeatable, zero or more labels)
//   type { body }
//   heredoc strings  <<EOF ... EOF  and  <<-EOF (indented terminator)
// Object literals accept `key = value` or `"key" = value` or `key: value`, separated by newlines
// or commas. Lists allow a trailing comma. Strings support \" \\ \n \t \r \uXXXX escapes.
// Errors carry "line L, column C: ..." positions (1-based).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::hcl {

struct Position {
  int line = 0;
  int column = 0;
};

struct Value {
  enum class Kind { kString, kNumber, kBool, kList, kObject };
  Kind kind = Kind::kString;
  Position pos;
  std::string str;        // kString; for kNumber the literal text
  double number = 0;      // kNumber
  bool boolean = false;   // kBool
  std::vector<Value> list;                              // kList
  std::vector<std::pair<std::string, Value>> object;    // kObject, in source order
};

struct Body;

struct Attribute {
  std::string key;
  Position pos;
  Value value;
};

struct Block {
  std::string type;
  std::vector<std::string> labels;
  Position pos;
  std::vector<Attribute> attributes;
  std::vector<Block> blocks;
};

struct Body {
  std::vector<Attribute> attributes;
  std::vector<Block> blocks;
};

// Parses a whole document. Depth of nesting (blocks, lists, objects) is limited to 64.
absl::StatusOr<Body> Parse(std::string_view text);

// "line 3, column 7" for error messages built by callers (e.g. "unknown key \"foo\"").
std::string Where(const Position& pos);

}  // namespace strongroom::hcl
