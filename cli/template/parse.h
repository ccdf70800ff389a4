// Parse tree of the template language (Go text/template's structure): a list of text, action
// and control nodes; actions hold pipelines of commands whose arguments are operands. The tree
// is immutable once parsed and shared between copies of a Template.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::tmpl {

// Nesting of control structures and parenthesized pipelines the parser accepts.
inline constexpr int kMaxParseDepth = 100;
inline constexpr size_t kMaxTemplateBytes = 1 << 20;

struct Pipe;

// A numeric constant as Go's parse.NumberNode classifies it.
struct Number {
  bool is_int = false;
  bool is_uint = false;
  bool is_float = false;
  int64_t int_value = 0;
  uint64_t uint_value = 0;
  double float_value = 0;
  // Go's idealConstant: a float when written as one (".eEpP", not hex int, not a char).
  bool prints_as_float = false;
};

struct Operand {
  enum class Kind {
    kField,
    kVariable,
    kChain,
    kIdentifier,
    kDot,
    kNil,
    kBool,
    kNumber,
    kString,
    kPipe
  };
  Kind kind = Kind::kDot;
  size_t pos = 0;
  // kField: field names; kVariable: variable name then field names; kChain: field names.
  std::vector<std::string> idents;
  std::string text;  // kString: the value; kIdentifier: the name; kNumber/kBool: as written
  bool bool_value = false;
  Number number;
  std::shared_ptr<Pipe> pipe;     // kPipe
  std::shared_ptr<Operand> base;  // kChain: the term the fields apply to
};

struct Command {
  size_t pos = 0;
  std::vector<Operand> args;
};

struct Pipe {
  size_t pos = 0;
  bool is_assign = false;
  std::vector<std::string> decl;
  std::vector<Command> cmds;
};

struct Node {
  enum class Kind { kText, kAction, kIf, kWith, kRange, kBreak, kContinue, kTemplate };
  Kind kind = Kind::kText;
  size_t pos = 0;
  std::string text;             // kText: the text; kTemplate: the called template's name
  std::shared_ptr<Pipe> pipe;   // kAction, kIf, kWith, kRange, kTemplate (may be null)
  std::vector<Node> list;       // body of if/with/range
  std::vector<Node> else_list;  // else branch
  bool has_else = false;
};

struct Tree {
  std::string name;
  std::string text;  // the source, for error positions
  std::vector<Node> root;
  // Templates declared with define/block, by name.
  std::map<std::string, std::vector<Node>, std::less<>> defines;
};

// Parses `text`. `known` reports whether a function name is defined (Go rejects calls of
// undefined functions at parse time). Errors are Go-formatted: `template: NAME:LINE: MESSAGE`.
absl::StatusOr<std::shared_ptr<const Tree>> ParseTree(
    std::string_view name, std::string_view text, std::string_view left_delim,
    std::string_view right_delim, const std::set<std::string, std::less<>>& known);

// Go's String() of nodes, for error contexts.
std::string OperandString(const Operand& o);
std::string CommandString(const Command& c);
std::string PipeString(const Pipe& p);
std::string NodeString(const Node& n);

}  // namespace strongroom::tmpl
