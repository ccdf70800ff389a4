#include "cli/template/exec.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cli/template/budget.h"
#include "cli/template/functions.h"
#include "cli/template/lexer.h"
#include "cli/template/literal.h"
#include "cli/template/strings.h"
#include "cli/template/value.h"

namespace strongroom::tmpl {
namespace {

// Thrown inside the executor only (as Go's executor panics), caught in ExecuteTree.
struct ExecFailure {
  std::string message;
};

enum class Flow { kNormal, kBreak, kContinue };

// The node execution is at, for error messages (Go's state.at).
struct At {
  enum class Kind { kNone, kNode, kPipe, kCommand, kOperand };
  Kind kind = Kind::kNone;
  const void* ptr = nullptr;
  size_t pos = 0;
};

class Executor {
 public:
  Executor(const Tree& tree, const FunctionMap& functions, const Options& options)
      : tree_(tree), functions_(functions), options_(options), budget_(options) {
    ctx_.max_bytes = options.max_output_bytes;
    ctx_.env = &options.env;
    ctx_.budget = &budget_;
    exec_name_ = tree.name;
  }

  std::string Run(const json::value& data) {
    // Go: a nil interface as data is an invalid value.
    const Value dot = data.is_null() ? Value() : Value::Borrow(data);
    vars_.push_back({"$", dot});
    Walk(dot, tree_.root);
    return std::move(out_);
  }

 private:
  struct Var {
    std::string_view name;
    Value value;
  };

  // Go's "template: NAME:LINE:COL: executing "NAME" at <CONTEXT>: MESSAGE".
  [[noreturn]] void Errorf(std::string_view message) {
    if (at_.kind == At::Kind::kNone) {
      throw ExecFailure{StrCat("template: ", exec_name_, ": ", message)};
    }
    const std::string_view text = tree_.text;
    const size_t pos = std::min(at_.pos, text.size());
    const std::string_view before = text.substr(0, pos);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t nl = before.rfind('\n');
    const size_t col = nl == std::string_view::npos ? pos : pos - nl - 1;
    std::string context;
    switch (at_.kind) {
      case At::Kind::kNode:
        context = NodeString(*static_cast<const Node*>(at_.ptr));
        break;
      case At::Kind::kPipe:
        context = PipeString(*static_cast<const Pipe*>(at_.ptr));
        break;
      case At::Kind::kCommand:
        context = CommandString(*static_cast<const Command*>(at_.ptr));
        break;
      case At::Kind::kOperand:
        context = OperandString(*static_cast<const Operand*>(at_.ptr));
        break;
      case At::Kind::kNone:
        break;
    }
    if (context.size() > 20) {  // Go: %.20s... (20 characters)
      size_t cut = 0;
      for (int n = 0; n < 20 && cut < context.size(); ++n) {
        size_t size = 0;
        DecodeRune(context, cut, &size);
        cut += size;
      }
      if (cut < context.size()) context = StrCat(context.substr(0, cut), "...");
    }
    throw ExecFailure{StrCat("template: ", tree_.name, ":", line, ":", col, ": executing ",
                             GoQuote(exec_name_), " at <", context, ">: ", message)};
  }

  void AtNode(const Node& n) { at_ = {At::Kind::kNode, &n, n.pos}; }
  void AtPipe(const Pipe& p) { at_ = {At::Kind::kPipe, &p, p.pos}; }
  void AtCommand(const Command& c) { at_ = {At::Kind::kCommand, &c, c.pos}; }
  void AtOperand(const Operand& o) { at_ = {At::Kind::kOperand, &o, o.pos}; }

  // A budget error (budget.h) at the current place.
  void Charge(const absl::Status& status) {
    if (!status.ok()) Errorf(Sv(status.message()));
  }
  void Step() { Charge(budget_.Step()); }
  // A string built from the template's text (a constant or a range key).
  Value OwnString(std::string_view s) {
    Charge(budget_.ChargeMemory(s.size()));
    return Value::Own(json::string(s));
  }

  // Recursion guard for walking and evaluating.
  class Nest {
   public:
    explicit Nest(Executor* e) : e_(e) {
      if (++e_->depth_ > kMaxExecDepth) {
        e_->Errorf(StrCat("execution nested deeper than ", kMaxExecDepth, " levels"));
      }
    }
    ~Nest() { --e_->depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    Executor* e_;
  };

  void Write(std::string_view s) {
    if (s.size() > options_.max_output_bytes - std::min(options_.max_output_bytes, out_.size())) {
      Errorf(StrCat("output exceeds ", options_.max_output_bytes, " bytes"));
    }
    out_.append(s);
  }

  Flow Walk(const Value& dot, const std::vector<Node>& list) {
    for (const Node& node : list) {
      const Flow flow = WalkNode(dot, node);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow WalkNode(const Value& dot, const Node& node) {
    Nest nest(this);
    Step();
    AtNode(node);
    switch (node.kind) {
      case Node::Kind::kText:
        Write(node.text);
        return Flow::kNormal;
      case Node::Kind::kAction: {
        const Value v = EvalPipeline(dot, *node.pipe);
        if (node.pipe->decl.empty()) {
          AtNode(node);
          auto s = PrintForAction(v, options_.max_output_bytes);
          if (!s.ok()) Errorf(Sv(s.status().message()));
          Write(*s);
        }
        return Flow::kNormal;
      }
      case Node::Kind::kIf:
      case Node::Kind::kWith: {
        const size_t mark = vars_.size();
        const Value v = EvalPipeline(dot, *node.pipe);
        Flow flow = Flow::kNormal;
        if (IsTrue(v)) {
          flow = Walk(node.kind == Node::Kind::kWith ? v : dot, node.list);
        } else if (node.has_else) {
          flow = Walk(dot, node.else_list);
        }
        vars_.resize(mark);
        return flow;
      }
      case Node::Kind::kRange:
        return WalkRange(dot, node);
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
      case Node::Kind::kTemplate:
        WalkTemplate(dot, node);
        return Flow::kNormal;
    }
    return Flow::kNormal;
  }

  Flow WalkRange(const Value& dot, const Node& node) {
    const size_t mark = vars_.size();
    const Value v = EvalPipeline(dot, *node.pipe);
    AtNode(node);
    const size_t decls = node.pipe->decl.size();
    const size_t body_mark = vars_.size();
    bool ran = false;
    // Runs one iteration; true to stop (break).
    auto iteration = [&](const Value& index, const Value& elem) {
      Step();
      ran = true;
      if (decls > 0) vars_[vars_.size() - 1].value = elem;
      if (decls > 1) vars_[vars_.size() - 2].value = index;
      const Flow flow = Walk(elem, node.list);
      vars_.resize(body_mark);
      return flow == Flow::kBreak;
    };
    if (v.valid()) {
      const json::value& j = v.get();
      switch (j.kind()) {
        case json::kind::array: {
          const json::array& a = j.get_array();
          for (size_t i = 0; i < a.size(); ++i) {
            if (iteration(Value::Own(static_cast<int64_t>(i)), v.Child(a[i]))) break;
          }
          break;
        }
        case json::kind::object: {
          const json::object& o = j.get_object();
          Charge(budget_.ChargeMemory(SatMul(o.size(), sizeof(const json::key_value_pair*))));
          for (const json::key_value_pair* kv : SortedEntries(o)) {
            if (iteration(OwnString(kv->key()), v.Child(kv->value()))) break;
          }
          break;
        }
        case json::kind::int64:
        case json::kind::uint64: {  // Go 1.22: range over an integer n yields 0..n-1
          if (decls > 1) Errorf("can't use an integer to iterate over more than one variable");
          const uint64_t n = j.is_uint64()       ? j.get_uint64()
                             : j.get_int64() < 0 ? 0
                                                 : static_cast<uint64_t>(j.get_int64());
          for (uint64_t i = 0; i < n; ++i) {
            const Value x = Value::Own(static_cast<int64_t>(i));
            if (iteration(Value(), x)) break;
          }
          break;
        }
        default:
          // Go prints the value here; it may be a secret, so only its type is named.
          Errorf(StrCat("range can't iterate over value of type ", GoTypeName(j)));
      }
    }
    Flow flow = Flow::kNormal;
    if (!ran && node.has_else) flow = Walk(dot, node.else_list);
    vars_.resize(mark);
    return flow;
  }

  void WalkTemplate(const Value& dot, const Node& node) {
    const std::vector<Node>* body = nullptr;
    if (node.text == tree_.name) {
      body = &tree_.root;
    } else if (auto it = tree_.defines.find(node.text); it != tree_.defines.end()) {
      body = &it->second;
    }
    if (body == nullptr) Errorf(StrCat("template ", GoQuote(node.text), " not defined"));
    if (template_depth_ >= kMaxTemplateDepth) {
      Errorf(StrCat("exceeded maximum template depth (", kMaxTemplateDepth, ")"));
    }
    const Value new_dot = node.pipe ? EvalPipeline(dot, *node.pipe) : Value();
    std::vector<Var> saved_vars = std::exchange(vars_, {{"$", new_dot}});
    const std::string_view saved_name = std::exchange(exec_name_, node.text);
    ++template_depth_;
    Walk(new_dot, *body);
    --template_depth_;
    exec_name_ = saved_name;
    vars_ = std::move(saved_vars);
  }

  Value EvalPipeline(const Value& dot, const Pipe& pipe) {
    Nest nest(this);
    AtPipe(pipe);
    Value value;
    bool has_final = false;
    for (const Command& cmd : pipe.cmds) {
      value = EvalCommand(dot, cmd, has_final ? &value : nullptr);
      has_final = true;
      // Go: a nil interface{} result becomes an invalid value ("<no value>").
      if (value.valid() && value.get().is_null()) value = Value();
    }
    for (const std::string& name : pipe.decl) {
      if (pipe.is_assign) {
        SetVar(name, value);
      } else {
        vars_.push_back({name, value});
      }
    }
    return value;
  }

  void NotAFunction(const Command& cmd, const Value* final) {
    if (cmd.args.size() > 1 || final != nullptr) {
      Errorf(StrCat("can't give argument to non-function ", OperandString(cmd.args[0])));
    }
  }

  Value EvalCommand(const Value& dot, const Command& cmd, const Value* final) {
    Step();
    const Operand& first = cmd.args[0];
    switch (first.kind) {
      case Operand::Kind::kField:
        return EvalFieldChain(dot, dot, first, first.idents, cmd.args.size() > 1 || final);
      case Operand::Kind::kChain:
        return EvalChain(dot, first, cmd.args.size() > 1 || final);
      case Operand::Kind::kIdentifier:
        return EvalFunction(dot, first, &cmd, final);
      case Operand::Kind::kPipe:
        NotAFunction(cmd, final);
        return EvalPipeline(dot, *first.pipe);
      case Operand::Kind::kVariable:
        return EvalVariable(dot, first, &cmd, final);
      default:
        break;
    }
    AtOperand(first);
    NotAFunction(cmd, final);
    switch (first.kind) {
      case Operand::Kind::kBool:
        return Value::Own(first.bool_value);
      case Operand::Kind::kDot:
        return dot;
      case Operand::Kind::kNil:
        Errorf("nil is not a command");
      case Operand::Kind::kNumber:
        return IdealConstant(first);
      case Operand::Kind::kString:
        return OwnString(first.text);
      default:
        Errorf(StrCat("can't evaluate command ", GoQuote(OperandString(first))));
    }
  }

  Value IdealConstant(const Operand& o) {
    AtOperand(o);
    const Number& n = o.number;
    if (n.prints_as_float) return Value::Own(n.float_value);
    if (n.is_int) return Value::Own(n.int_value);
    if (n.is_uint) Errorf(StrCat(o.text, " overflows int"));
    return Value();
  }

  Value EvalChain(const Value& dot, const Operand& chain, bool has_args) {
    AtOperand(chain);
    if (chain.base->kind == Operand::Kind::kNil) {
      Errorf(StrCat("indirection through explicit nil in ", OperandString(chain)));
    }
    const Value base = EvalArg(dot, *chain.base);
    return EvalFieldChain(dot, base, chain, chain.idents, has_args);
  }

  Value EvalVariable(const Value& dot, const Operand& var, const Command* cmd, const Value* final) {
    AtOperand(var);
    const Value value = VarValue(var.idents[0]);
    if (var.idents.size() == 1) {
      if (cmd != nullptr) NotAFunction(*cmd, final);
      return value;
    }
    return EvalFieldChain(dot, value, var, std::span(var.idents).subspan(1),
                          cmd != nullptr && (cmd->args.size() > 1 || final));
  }

  Value EvalFieldChain(const Value& /*dot*/, Value receiver, const Operand& node,
                       std::span<const std::string> idents, bool has_args) {
    AtOperand(node);
    for (size_t i = 0; i < idents.size(); ++i) {
      receiver = EvalField(idents[i], receiver, has_args && i + 1 == idents.size());
    }
    return receiver;
  }

  Value EvalField(const std::string& name, const Value& receiver, bool has_args) {
    if (!receiver.valid()) {
      if (options_.error_on_missing_key) {
        Errorf(StrCat("nil data; no entry for key ", GoQuote(name)));
      }
      return Value();
    }
    const json::value& j = receiver.get();
    if (j.is_null()) Errorf(StrCat("nil pointer evaluating interface {}.", name));
    if (j.is_object()) {
      if (has_args) Errorf(StrCat(name, " is not a method but has arguments"));
      if (const json::value* v = j.get_object().if_contains(name)) return receiver.Child(*v);
      if (options_.error_on_missing_key) {
        Errorf(StrCat("map has no entry for key ", GoQuote(name)));
      }
      return Value();
    }
    Errorf(StrCat("can't evaluate field ", name, " in type ", GoTypeName(j)));
  }

  // An argument, evaluated as Go does for an interface{} or reflect.Value parameter.
  Value EvalArg(const Value& dot, const Operand& arg) {
    AtOperand(arg);
    switch (arg.kind) {
      case Operand::Kind::kDot:
        return dot;
      case Operand::Kind::kNil:
        return Value::Own(nullptr);
      case Operand::Kind::kField:
        return EvalFieldChain(dot, dot, arg, arg.idents, false);
      case Operand::Kind::kVariable:
        return EvalVariable(dot, arg, nullptr, nullptr);
      case Operand::Kind::kPipe:
        return EvalPipeline(dot, *arg.pipe);
      case Operand::Kind::kIdentifier:
        return EvalFunction(dot, arg, nullptr, nullptr);
      case Operand::Kind::kChain:
        return EvalChain(dot, arg, false);
      case Operand::Kind::kBool:
        return Value::Own(arg.bool_value);
      case Operand::Kind::kNumber:
        return IdealConstant(arg);
      case Operand::Kind::kString:
        return OwnString(arg.text);
    }
    return Value();
  }

  // A function call: `cmd` holds the name and arguments (null when the function is itself an
  // argument, called without arguments); `final` is the piped value, if any.
  Value EvalFunction(const Value& dot, const Operand& ident, const Command* cmd,
                     const Value* final) {
    AtOperand(ident);
    const std::string& name = ident.text;
    const std::span<const Operand> args =
        cmd != nullptr ? std::span(cmd->args).subspan(1) : std::span<const Operand>();
    const size_t num_in = args.size() + (final != nullptr ? 1 : 0);
    auto call_failed = [&](const absl::Status& status) {
      if (cmd != nullptr) AtCommand(*cmd);
      if (IsArgTypeError(status) || IsBudgetError(status)) Errorf(Sv(status.message()));
      Errorf(StrCat("error calling ", name, ": ", Sv(status.message())));
    };
    if (auto it = functions_.find(name); it != functions_.end()) {
      // The caller's function takes copies of the arguments: each is charged before it is made.
      std::vector<json::value> argv;
      argv.reserve(num_in);
      auto copy_arg = [&](const Value& v) {
        if (!v.valid()) {
          argv.emplace_back();
          return;
        }
        Charge(budget_.ChargeMemory(ValueBytes(v.get())));
        argv.push_back(v.get());
      };
      for (const Operand& a : args) copy_arg(EvalArg(dot, a));
      if (final != nullptr) copy_arg(*final);
      const absl::Duration start = Budget::Now();
      absl::StatusOr<json::value> result = it->second(argv);
      budget_.ExcludeTime(Budget::Now() - start);
      const At saved = at_;
      if (cmd != nullptr) AtCommand(*cmd);
      if (!result.ok()) {
        Errorf(StrCat("error calling ", name, ": ", Sv(result.status().message())));
      }
      Charge(budget_.ChargeMemory(ValueBytes(*result)));
      at_ = saved;
      return Value::Own(*std::move(result));
    }
    const Builtin* builtin = FindBuiltin(name);
    if (builtin == nullptr) Errorf(StrCat(GoQuote(name), " is not a defined function"));
    const size_t min = static_cast<size_t>(builtin->min_args);
    if (builtin->variadic && num_in < min) {
      Errorf(
          StrCat("wrong number of args for ", name, ": want at least ", min, " got ", args.size()));
    }
    if (!builtin->variadic && num_in != min) {
      Errorf(StrCat("wrong number of args for ", name, ": want ", min, " got ", num_in));
    }
    if (builtin->fn == nullptr) {  // and, or: evaluate only as far as needed
      const bool is_or = name == "or";
      Value v;
      for (const Operand& a : args) {
        v = EvalArg(dot, a);
        if (IsTrue(v) == is_or) return v;
      }
      if (final != nullptr) v = *final;
      return v;
    }
    std::vector<Value> argv;
    argv.reserve(num_in);
    for (const Operand& a : args) argv.push_back(EvalArg(dot, a));
    if (final != nullptr) argv.push_back(*final);
    AtOperand(ident);
    // Reading each string argument once (comparing, scanning, parsing, formatting, hashing a
    // key) is work; anything more a function does, and what it builds, it charges itself.
    uint64_t read = 0;
    for (size_t i = FirstArgumentRead(name); i < argv.size(); ++i) {
      const Value& v = argv[i];
      if (v.valid() && v.get().is_string()) read = SatAdd(read, v.get().get_string().size());
    }
    Charge(budget_.ChargeWork(read));
    absl::StatusOr<Value> result = builtin->fn(argv, ctx_);
    if (!result.ok()) call_failed(result.status());
    return *std::move(result);
  }

  // The first argument whose bytes a builtin reads: `index` reads its keys but not the item
  // it indexes; len, slice and not read no string's bytes.
  static size_t FirstArgumentRead(std::string_view name) {
    if (name == "index") return 1;
    if (name == "len" || name == "slice" || name == "not") return SIZE_MAX;
    return 0;
  }

  Value VarValue(std::string_view name) {
    for (size_t i = vars_.size(); i > 0; --i) {
      if (vars_[i - 1].name == name) return vars_[i - 1].value;
    }
    Errorf(StrCat("undefined variable: ", name));
  }

  void SetVar(std::string_view name, const Value& value) {
    for (size_t i = vars_.size(); i > 0; --i) {
      if (vars_[i - 1].name == name) {
        vars_[i - 1].value = value;
        return;
      }
    }
    Errorf(StrCat("undefined variable: ", name));
  }

  const Tree& tree_;
  const FunctionMap& functions_;
  const Options& options_;
  Budget budget_;
  CallContext ctx_;
  std::vector<Var> vars_;
  std::string out_;
  std::string_view exec_name_;
  At at_;
  int depth_ = 0;
  int template_depth_ = 0;
};

}  // namespace

absl::StatusOr<std::string> ExecuteTree(const Tree& tree, const json::value& dot,
                                        const FunctionMap& functions, const Options& options) {
  try {
    Executor executor(tree, functions, options);
    return executor.Run(dot);
  } catch (const ExecFailure& failure) {
    return absl::FailedPreconditionError(failure.message);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(StrCat("template: ", tree.name, ": out of memory"));
  }
}

}  // namespace strongroom::tmpl
