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
//
// Details a caller may rely on:
//  * Newlines are not significant: `listener "tcp" { address = "x" tls_disable = true }` is one
//    block with two attributes. A comma may follow any body item, object entry or list element.
//  * Names (attribute keys, block types, unquoted labels, object keys) are
//    [A-Za-z_][A-Za-z0-9_.-]*; any of them may instead be a quoted string. Block labels may be
//    strings or names (`listener tcp { }` == `listener "tcp" { }`).
//  * Duplicate attribute keys (and duplicate object keys) are kept, in source order; whether a
//    repeat is an error is the caller's decision (Vault rejects some, merges others).
//  * Escapes: \" \\ \/ \b \f \n \r \t \uXXXX (a UTF-16 surrogate pair for characters above
//    U+FFFF, as in JSON). \u0000 is rejected because these strings end up in C APIs (library
//    paths, PINs). Raw control characters (U+0000-U+001F, U+007F) are rejected inside quoted
//    strings (use an escape), and everywhere else except tab and the newline that ends a line;
//    invalid UTF-8 is rejected everywhere.
//  * Heredocs: `<<EOF` must end its line; the body runs until a line that is exactly `EOF`
//    (`<<-EOF`: the terminator may be indented, and the smallest indentation of the non-blank
//    body lines is removed from every line). The value keeps a final newline; CRLF becomes LF.
//  * Numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (no leading zeros, no hex). An integer
//    literal must lie within +-(2^53 - 1) so that `number` holds it exactly; other literals
//    must be finite doubles. `str` keeps the literal text.
//  * Positions: line and column are 1-based; a column counts characters (code points), a tab
//    is one column. Value::pos is where the value starts, Attribute::pos and Block::pos where
//    the key / block type is.
//  * Limits: nesting of blocks, lists and objects is at most 64 deep; a document is at most
//    1 MiB (parsed values take far more memory than their source).
//
// JSON form. When the first character that is not a space, tab, CR or LF is `{`, the document
// is read as strict JSON (RFC 8259: no comments, no trailing commas, `null` is rejected) and
// mapped onto the same Body as HCL1 does for Vault's JSON policies and configs:
//  * Each member K of the top-level object whose value V is
//      - an object, non-empty, all of whose member values are objects: one block per member
//        (type K, one label = the member key, body = that member's object);
//        {"path": {"a/*": {...}, "b": {...}}} == path "a/*" {...}  path "b" {...}
//      - any other object: one block of type K with no labels and body V;
//        {"telemetry": {"x": 1}} == telemetry { x = 1 }
//      - a non-empty list whose elements are all objects: each element becomes block(s) by the
//        two rules above; {"listener": [{"tcp": {...}}, {"tcp": {...}}]} == two listener blocks
//      - anything else (string, number, bool, other list): attribute K = V.
//  * Inside a block body every member is an attribute; an object there becomes an attribute
//    with a kObject value (`{"allowed_parameters": {"ttl": []}}` == `allowed_parameters =
//    {"ttl" = []}`). JSON therefore never yields nested blocks: a caller that accepts a nested
//    block (e.g. a listener's `telemetry { }`) should also accept an object-valued attribute.
//  * Positions: Attribute::pos is the member key; a labelled Block::pos is its label key, an
//    unlabelled one its type key (or, for a list element, the element's `{`).
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

  // Declared here, defaulted in hcl.cc. Left implicit, clang with libstdc++ in C++20 mode
  // rejects `object` below: defining Value's constructor instantiates std::pair<.., Value>,
  // which asks whether Value is default-constructible while that is still being decided.
  Value();
  Value(const Value&);
  Value(Value&&) noexcept;
  Value& operator=(const Value&);
  Value& operator=(Value&&) noexcept;
  ~Value();

  Kind kind = Kind::kString;
  Position pos;
  std::string str;                                    // kString; for kNumber the literal text
  double number = 0;                                  // kNumber
  bool boolean = false;                               // kBool
  std::vector<Value> list;                            // kList
  std::vector<std::pair<std::string, Value>> object;  // kObject, in source order
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

// Parses a whole document (HCL, or JSON as described above). Errors are InvalidArgument with a
// message "line L, column C: expected ..., found ...". Messages never quote the contents of a
// quoted string, not even one in key position (it may be a misplaced PIN or token); they may
// quote bare names.
absl::StatusOr<Body> Parse(std::string_view text);

// "line 3, column 7" for error messages built by callers (e.g. "unknown key \"foo\"").
std::string Where(const Position& pos);

}  // namespace strongroom::hcl
