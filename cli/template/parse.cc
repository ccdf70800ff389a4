#include "cli/template/parse.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "cli/template/lexer.h"
#include "cli/template/literal.h"
#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

// Thrown inside the parser only (as Go's parser panics), caught in ParseTree.
struct ParseFailure {
  std::string message;
};

// What TextOrAction produced.
struct Item {
  enum class Kind { kNode, kEnd, kElse, kNone };
  Kind kind = Kind::kNone;
  Node node;
};

bool IsEmptyList(const std::vector<Node>& list) {
  for (const Node& n : list) {
    if (n.kind != Node::Kind::kText) return false;
    if (n.text.find_first_not_of(" \t\r\n") != std::string::npos) return false;
  }
  return true;
}

class Parser {
 public:
  Parser(std::string_view name, std::string_view text, std::string_view left,
         std::string_view right, const std::set<std::string, std::less<>>& known, Tree* tree)
      : name_(name), known_(known), tree_(tree), tokens_(Lex(text, left, right)) {
    // The final token (EOF or error) repeats, so a Backup after reading it reads it again.
    const Token last = tokens_.back();
    for (int i = 0; i < 3; ++i) tokens_.push_back(last);
  }

  void Parse() {
    vars_ = {"$"};
    while (Peek().kind != TokenKind::kEof) {
      if (Peek().kind == TokenKind::kLeftDelim) {
        const size_t saved = idx_;
        Next();
        if (NextNonSpace().kind == TokenKind::kDefine) {
          ParseDefinition();
          continue;
        }
        idx_ = saved;
      }
      Item item = TextOrAction();
      if (item.kind == Item::Kind::kEnd) Fail("unexpected {{end}}");
      if (item.kind == Item::Kind::kElse) Fail("unexpected {{else}}");
      if (item.kind == Item::Kind::kNode) tree_->root.push_back(std::move(item.node));
    }
    if (auto it = tree_->defines.find(name_); it != tree_->defines.end()) {
      if (!IsEmptyList(it->second) && !IsEmptyList(tree_->root)) {
        Fail(StrCat("template: multiple definition of template ", GoQuote(name_)));
      }
      if (IsEmptyList(tree_->root)) tree_->root = std::move(it->second);
      tree_->defines.erase(it);
    }
  }

 private:
  [[noreturn]] void Fail(std::string_view message) {
    throw ParseFailure{StrCat("template: ", name_, ":", line_, ": ", message)};
  }
  [[noreturn]] void Unexpected(const Token& token, std::string_view context) {
    if (token.kind == TokenKind::kError) {
      std::string extra;
      if (action_line_ != 0 && action_line_ != token.line) {
        extra = StrCat(" in action started at ", name_, ":", action_line_);
        if (std::string_view(token.message).ends_with(" action")) {
          extra = extra.substr(std::string_view(" in action").size());
        }
      }
      Fail(token.message + extra);
    }
    Fail(StrCat("unexpected ", TokenString(token), " in ", context));
  }

  const Token& Next() {
    const Token& t = tokens_[idx_];
    if (idx_ + 1 < tokens_.size()) ++idx_;  // the last token (EOF or error) repeats
    line_ = t.line;
    return t;
  }
  void Backup() {
    if (idx_ > 0) --idx_;
  }
  const Token& Peek() {
    line_ = tokens_[idx_].line;
    return tokens_[idx_];
  }
  const Token& NextNonSpace() {
    while (tokens_[idx_].kind == TokenKind::kSpace) Next();
    return Next();
  }
  const Token& PeekNonSpace() {
    while (tokens_[idx_].kind == TokenKind::kSpace) Next();
    return Peek();
  }
  const Token& Expect(TokenKind kind, std::string_view context) {
    const Token& t = NextNonSpace();
    if (t.kind != kind) Unexpected(t, context);
    return t;
  }

  void EnterNesting() {
    if (++depth_ > kMaxParseDepth) {
      Fail(StrCat("nesting of actions and parentheses exceeds ", kMaxParseDepth, " levels"));
    }
  }

  void AddDefine(const std::string& name, std::vector<Node> body) {
    auto it = tree_->defines.find(name);
    if (it == tree_->defines.end() || IsEmptyList(it->second)) {
      tree_->defines[name] = std::move(body);
    } else if (!IsEmptyList(body)) {
      Fail(StrCat("template: multiple definition of template ", GoQuote(name)));
    }
  }

  std::string TemplateName(const Token& token, std::string_view context) {
    if (token.kind != TokenKind::kString && token.kind != TokenKind::kRawString) {
      Unexpected(token, context);
    }
    auto name = UnquoteString(token.text);
    if (!name) Fail("invalid syntax");
    return *name;
  }

  // Parses a body with a fresh variable scope, as Go parses a define/block into a new tree.
  std::vector<Node> DefinitionBody(std::string_view context) {
    std::vector<std::string> saved_vars = std::exchange(vars_, {"$"});
    const int saved_range = std::exchange(range_depth_, 0);
    auto [body, end] = ItemList();
    if (end.kind != Item::Kind::kEnd) Fail(StrCat("unexpected {{else}} in ", context));
    vars_ = std::move(saved_vars);
    range_depth_ = saved_range;
    return std::move(body);
  }

  void ParseDefinition() {
    const std::string name = TemplateName(NextNonSpace(), "define clause");
    Expect(TokenKind::kRightDelim, "define clause");
    AddDefine(name, DefinitionBody("define clause"));
  }

  std::pair<std::vector<Node>, Item> ItemList() {
    std::vector<Node> list;
    while (PeekNonSpace().kind != TokenKind::kEof) {
      Item item = TextOrAction();
      if (item.kind == Item::Kind::kEnd || item.kind == Item::Kind::kElse) {
        return {std::move(list), std::move(item)};
      }
      if (item.kind == Item::Kind::kNode) list.push_back(std::move(item.node));
    }
    Fail("unexpected EOF");
  }

  Item TextOrAction() {
    const Token& token = NextNonSpace();
    Item item;
    switch (token.kind) {
      case TokenKind::kText:
        item.kind = Item::Kind::kNode;
        item.node.kind = Node::Kind::kText;
        item.node.pos = token.pos;
        item.node.text = std::string(token.text);
        return item;
      case TokenKind::kLeftDelim: {
        action_line_ = token.line;
        item = Action();
        action_line_ = 0;
        return item;
      }
      case TokenKind::kComment:
        return item;
      default:
        Unexpected(token, "input");
    }
  }

  Item Action() {
    const Token& token = NextNonSpace();
    switch (token.kind) {
      case TokenKind::kBlock:
        return NodeItem(BlockControl());
      case TokenKind::kBreak:
      case TokenKind::kContinue:
        return NodeItem(BreakControl(token));
      case TokenKind::kElse: {
        const Token& peek = PeekNonSpace();
        if (peek.kind != TokenKind::kIf && peek.kind != TokenKind::kWith) {
          Expect(TokenKind::kRightDelim, "else");
        }
        Item item;
        item.kind = Item::Kind::kElse;
        return item;
      }
      case TokenKind::kEnd: {
        Expect(TokenKind::kRightDelim, "end");
        Item item;
        item.kind = Item::Kind::kEnd;
        return item;
      }
      case TokenKind::kIf:
        return NodeItem(Control(Node::Kind::kIf, "if", token.pos));
      case TokenKind::kRange:
        return NodeItem(Control(Node::Kind::kRange, "range", token.pos));
      case TokenKind::kWith:
        return NodeItem(Control(Node::Kind::kWith, "with", token.pos));
      case TokenKind::kTemplate:
        return NodeItem(TemplateControl());
      default:
        break;
    }
    Backup();
    Node node;
    node.kind = Node::Kind::kAction;
    node.pos = PeekNonSpace().pos;
    node.pipe = ParsePipeline("command", TokenKind::kRightDelim);
    return NodeItem(std::move(node));
  }

  static Item NodeItem(Node node) {
    Item item;
    item.kind = Item::Kind::kNode;
    item.node = std::move(node);
    return item;
  }

  Node BreakControl(const Token& keyword) {
    const bool is_break = keyword.kind == TokenKind::kBreak;
    const std::string_view word = is_break ? "{{break}}" : "{{continue}}";
    Node node;
    node.kind = is_break ? Node::Kind::kBreak : Node::Kind::kContinue;
    node.pos = keyword.pos;
    const Token& t = NextNonSpace();
    if (t.kind != TokenKind::kRightDelim) Unexpected(t, word);
    if (range_depth_ == 0) Fail(StrCat(word, " outside {{range}}"));
    return node;
  }

  Node TemplateControl() {
    Node node;
    node.kind = Node::Kind::kTemplate;
    const Token& name_token = NextNonSpace();
    node.pos = name_token.pos;
    node.text = TemplateName(name_token, "template clause");
    if (NextNonSpace().kind != TokenKind::kRightDelim) {
      Backup();
      node.pipe = ParsePipeline("template clause", TokenKind::kRightDelim);
    }
    return node;
  }

  Node BlockControl() {
    Node node;
    node.kind = Node::Kind::kTemplate;
    const Token& name_token = NextNonSpace();
    node.pos = name_token.pos;
    node.text = TemplateName(name_token, "block clause");
    if (NextNonSpace().kind != TokenKind::kRightDelim) {
      Backup();
      node.pipe = ParsePipeline("block clause", TokenKind::kRightDelim);
    }
    EnterNesting();
    AddDefine(node.text, DefinitionBody("block clause"));
    --depth_;
    return node;
  }

  Node Control(Node::Kind kind, std::string_view context, size_t pos) {
    EnterNesting();
    const size_t vars_mark = vars_.size();
    Node node;
    node.kind = kind;
    node.pos = pos;
    node.pipe = ParsePipeline(context, TokenKind::kRightDelim);
    node.pos = node.pipe->pos;  // Go positions control nodes at their pipeline
    if (kind == Node::Kind::kRange) ++range_depth_;
    auto [list, next] = ItemList();
    if (kind == Node::Kind::kRange) --range_depth_;
    node.list = std::move(list);
    if (next.kind == Item::Kind::kElse) {
      node.has_else = true;
      const TokenKind chained = PeekNonSpace().kind;
      if (kind == Node::Kind::kIf && chained == TokenKind::kIf) {
        const Token& t = Next();
        node.else_list.push_back(Control(Node::Kind::kIf, "if", t.pos));
      } else if (kind == Node::Kind::kWith && chained == TokenKind::kWith) {
        const Token& t = Next();
        node.else_list.push_back(Control(Node::Kind::kWith, "with", t.pos));
      } else {
        auto [else_list, end] = ItemList();
        if (end.kind != Item::Kind::kEnd) Fail("expected end; found {{else}}");
        node.else_list = std::move(else_list);
      }
    }
    vars_.resize(vars_mark);
    --depth_;
    return node;
  }

  std::shared_ptr<Pipe> ParsePipeline(std::string_view context, TokenKind end) {
    auto pipe = std::make_shared<Pipe>();
    pipe->pos = PeekNonSpace().pos;
    for (;;) {  // declarations
      const Token& v = PeekNonSpace();
      if (v.kind != TokenKind::kVariable) break;
      const size_t before = idx_;
      Next();
      const Token& next = PeekNonSpace();
      if (next.kind == TokenKind::kAssign || next.kind == TokenKind::kDeclare) {
        pipe->is_assign = next.kind == TokenKind::kAssign;
        NextNonSpace();
        pipe->decl.emplace_back(v.text);
        vars_.emplace_back(v.text);
        break;
      }
      if (next.kind == TokenKind::kChar && next.text == ",") {
        NextNonSpace();
        pipe->decl.emplace_back(v.text);
        vars_.emplace_back(v.text);
        if (context == "range" && pipe->decl.size() < 2) {
          const TokenKind k = PeekNonSpace().kind;
          if (k == TokenKind::kVariable || k == TokenKind::kRightDelim ||
              k == TokenKind::kRightParen) {
            continue;
          }
          Fail("range can only initialize variables");
        }
        Fail(StrCat("too many declarations in ", context));
      }
      idx_ = before;
      break;
    }
    for (;;) {
      const Token& token = NextNonSpace();
      if (token.kind == end) {
        if (pipe->cmds.empty()) Fail(StrCat("missing value for ", context));
        for (size_t i = 1; i < pipe->cmds.size(); ++i) {
          switch (pipe->cmds[i].args[0].kind) {
            case Operand::Kind::kBool:
            case Operand::Kind::kDot:
            case Operand::Kind::kNil:
            case Operand::Kind::kNumber:
            case Operand::Kind::kString:
              Fail(StrCat("non executable command in pipeline stage ", i + 1));
            default:
              break;
          }
        }
        return pipe;
      }
      switch (token.kind) {
        case TokenKind::kBool:
        case TokenKind::kCharConstant:
        case TokenKind::kDot:
        case TokenKind::kField:
        case TokenKind::kIdentifier:
        case TokenKind::kNumber:
        case TokenKind::kNil:
        case TokenKind::kRawString:
        case TokenKind::kString:
        case TokenKind::kVariable:
        case TokenKind::kLeftParen:
          Backup();
          pipe->cmds.push_back(ParseCommand());
          break;
        default:
          Unexpected(token, context);
      }
    }
  }

  Command ParseCommand() {
    Command cmd;
    cmd.pos = PeekNonSpace().pos;
    for (;;) {
      PeekNonSpace();
      if (auto operand = ParseOperand()) cmd.args.push_back(std::move(*operand));
      const Token& token = Next();
      if (token.kind == TokenKind::kSpace) continue;
      if (token.kind == TokenKind::kRightDelim || token.kind == TokenKind::kRightParen) {
        Backup();
      } else if (token.kind != TokenKind::kPipe) {
        Unexpected(token, "operand");
      }
      break;
    }
    if (cmd.args.empty()) Fail("empty command");
    return cmd;
  }

  std::optional<Operand> ParseOperand() {
    std::optional<Operand> node = ParseTerm();
    if (!node || Peek().kind != TokenKind::kField) return node;
    std::vector<std::string> fields;
    const size_t pos = Peek().pos;
    while (Peek().kind == TokenKind::kField) fields.emplace_back(Next().text.substr(1));
    switch (node->kind) {
      case Operand::Kind::kField:
      case Operand::Kind::kVariable:
        for (auto& f : fields) node->idents.push_back(std::move(f));
        return node;
      case Operand::Kind::kBool:
      case Operand::Kind::kString:
      case Operand::Kind::kNumber:
      case Operand::Kind::kNil:
      case Operand::Kind::kDot:
        Fail(StrCat("unexpected . after term ", GoQuote(OperandString(*node))));
      default: {
        Operand chain;
        chain.kind = Operand::Kind::kChain;
        chain.pos = pos;
        chain.idents = std::move(fields);
        chain.base = std::make_shared<Operand>(std::move(*node));
        return chain;
      }
    }
  }

  std::optional<Operand> ParseTerm() {
    const Token& token = NextNonSpace();
    Operand o;
    o.pos = token.pos;
    o.text = std::string(token.text);
    switch (token.kind) {
      case TokenKind::kIdentifier:
        if (known_.find(token.text) == known_.end()) {
          Fail(StrCat("function ", GoQuote(token.text), " not defined"));
        }
        o.kind = Operand::Kind::kIdentifier;
        return o;
      case TokenKind::kDot:
        o.kind = Operand::Kind::kDot;
        return o;
      case TokenKind::kNil:
        o.kind = Operand::Kind::kNil;
        return o;
      case TokenKind::kVariable:
        if (std::find(vars_.begin(), vars_.end(), token.text) == vars_.end()) {
          Fail(StrCat("undefined variable ", GoQuote(token.text)));
        }
        o.kind = Operand::Kind::kVariable;
        o.idents.emplace_back(token.text);
        return o;
      case TokenKind::kField:
        o.kind = Operand::Kind::kField;
        o.idents.emplace_back(token.text.substr(1));
        return o;
      case TokenKind::kBool:
        o.kind = Operand::Kind::kBool;
        o.bool_value = token.text == "true";
        return o;
      case TokenKind::kCharConstant:
      case TokenKind::kNumber:
        o.kind = Operand::Kind::kNumber;
        if (auto err = ParseNumber(token.text, token.kind == TokenKind::kCharConstant, &o.number)) {
          Fail(*err);
        }
        return o;
      case TokenKind::kLeftParen:
        EnterNesting();
        o.kind = Operand::Kind::kPipe;
        o.pipe = ParsePipeline("parenthesized pipeline", TokenKind::kRightParen);
        --depth_;
        return o;
      case TokenKind::kString:
      case TokenKind::kRawString: {
        auto s = UnquoteString(token.text);
        if (!s) Fail("invalid syntax");
        o.kind = Operand::Kind::kString;
        o.text = std::move(*s);
        o.idents.emplace_back(token.text);  // as written, for error contexts
        return o;
      }
      default:
        Backup();
        return std::nullopt;
    }
  }

  std::string name_;
  const std::set<std::string, std::less<>>& known_;
  Tree* tree_;
  std::vector<Token> tokens_;
  size_t idx_ = 0;
  size_t line_ = 1;
  size_t action_line_ = 0;
  int depth_ = 0;
  int range_depth_ = 0;
  std::vector<std::string> vars_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Tree>> ParseTree(
    std::string_view name, std::string_view text, std::string_view left_delim,
    std::string_view right_delim, const std::set<std::string, std::less<>>& known) {
  if (text.size() > kMaxTemplateBytes) {
    return absl::InvalidArgumentError(
        StrCat("template: ", name, ": template text exceeds ", kMaxTemplateBytes, " bytes"));
  }
  if (left_delim.empty()) left_delim = "{{";
  if (right_delim.empty()) right_delim = "}}";
  auto tree = std::make_shared<Tree>();
  tree->name = std::string(name);
  tree->text = std::string(text);
  try {
    Parser parser(name, tree->text, left_delim, right_delim, known, tree.get());
    parser.Parse();
  } catch (const ParseFailure& failure) {
    return absl::InvalidArgumentError(failure.message);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(StrCat("template: ", name, ": out of memory"));
  }
  return std::shared_ptr<const Tree>(std::move(tree));
}

}  // namespace strongroom::tmpl
