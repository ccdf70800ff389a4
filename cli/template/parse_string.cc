// Go's String() of parse nodes, used in execution error contexts ("at <.Data.x>").
#include <string>
#include <vector>

#include "cli/template/literal.h"
#include "cli/template/parse.h"
#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

void AppendList(std::string* out, const std::vector<Node>& list) {
  for (const Node& n : list) *out += NodeString(n);
}

}  // namespace

std::string OperandString(const Operand& o) {
  switch (o.kind) {
    case Operand::Kind::kField: {
      std::string s;
      for (const auto& f : o.idents) StrAppend(&s, ".", f);
      return s;
    }
    case Operand::Kind::kVariable: {
      std::string s = o.idents.empty() ? "$" : o.idents[0];
      for (size_t i = 1; i < o.idents.size(); ++i) StrAppend(&s, ".", o.idents[i]);
      return s;
    }
    case Operand::Kind::kChain: {
      std::string s;
      if (o.base) {
        s = o.base->kind == Operand::Kind::kPipe ? StrCat("(", OperandString(*o.base), ")")
                                                 : OperandString(*o.base);
      }
      for (const auto& f : o.idents) StrAppend(&s, ".", f);
      return s;
    }
    case Operand::Kind::kDot:
      return ".";
    case Operand::Kind::kNil:
      return "nil";
    case Operand::Kind::kString:
      return o.idents.empty() ? GoQuote(o.text) : o.idents[0];
    case Operand::Kind::kPipe:
      return o.pipe ? PipeString(*o.pipe) : "";
    default:
      return o.text;
  }
}

std::string CommandString(const Command& c) {
  std::string s;
  for (size_t i = 0; i < c.args.size(); ++i) {
    if (i > 0) s += ' ';
    if (c.args[i].kind == Operand::Kind::kPipe) {
      StrAppend(&s, "(", OperandString(c.args[i]), ")");
    } else {
      s += OperandString(c.args[i]);
    }
  }
  return s;
}

std::string PipeString(const Pipe& p) {
  std::string s;
  for (size_t i = 0; i < p.decl.size(); ++i) {
    if (i > 0) s += ", ";
    s += p.decl[i];
  }
  if (!p.decl.empty()) s += p.is_assign ? " = " : " := ";
  for (size_t i = 0; i < p.cmds.size(); ++i) {
    if (i > 0) s += " | ";
    s += CommandString(p.cmds[i]);
  }
  return s;
}

std::string NodeString(const Node& n) {
  const std::string pipe = n.pipe ? PipeString(*n.pipe) : "";
  std::string s;
  switch (n.kind) {
    case Node::Kind::kText:
      return GoQuote(n.text);
    case Node::Kind::kAction:
      return StrCat("{{", pipe, "}}");
    case Node::Kind::kBreak:
      return "{{break}}";
    case Node::Kind::kContinue:
      return "{{continue}}";
    case Node::Kind::kTemplate:
      return n.pipe ? StrCat("{{template ", GoQuote(n.text), " ", pipe, "}}")
                    : StrCat("{{template ", GoQuote(n.text), "}}");
    case Node::Kind::kIf:
      s = StrCat("{{if ", pipe, "}}");
      break;
    case Node::Kind::kWith:
      s = StrCat("{{with ", pipe, "}}");
      break;
    case Node::Kind::kRange:
      s = StrCat("{{range ", pipe, "}}");
      break;
  }
  AppendList(&s, n.list);
  if (n.has_else) {
    s += "{{else}}";
    AppendList(&s, n.else_list);
  }
  s += "{{end}}";
  return s;
}

}  // namespace strongroom::tmpl
