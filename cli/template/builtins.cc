// Go text/template's builtin functions over JSON values.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/template/functions.h"
#include "cli/template/lexer.h"
#include "cli/template/literal.h"
#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

enum class BasicKind { kInvalid, kBool, kInt, kUint, kFloat, kString };

BasicKind KindOf(const Value& v) {
  if (v.nil()) return BasicKind::kInvalid;
  switch (v.get().kind()) {
    case json::kind::bool_:
      return BasicKind::kBool;
    case json::kind::int64:
      return BasicKind::kInt;
    case json::kind::uint64:
      return BasicKind::kUint;
    case json::kind::double_:
      return BasicKind::kFloat;
    case json::kind::string:
      return BasicKind::kString;
    default:
      return BasicKind::kInvalid;
  }
}

bool IsNumber(BasicKind k) {
  return k == BasicKind::kInt || k == BasicKind::kUint || k == BasicKind::kFloat;
}

// Three-way numeric comparison across int64/uint64/double (long double holds every int64
// and uint64 exactly). NaN compares unordered: returns 2.
int CompareNumbers(const json::value& a, const json::value& b) {
  auto ld = [](const json::value& v) -> long double {
    if (v.is_int64()) return static_cast<long double>(v.get_int64());
    if (v.is_uint64()) return static_cast<long double>(v.get_uint64());
    return static_cast<long double>(v.get_double());
  };
  const long double x = ld(a), y = ld(b);
  if (x < y) return -1;
  if (x > y) return 1;
  if (x == y) return 0;
  return 2;
}

const char kIncompatible[] = "incompatible types for comparison";
const char kInvalidType[] = "invalid type for comparison";

// Go's eq for one pair; numbers compare by value across int, uint and float (Go itself would
// call int vs float incompatible, which JSON's number model makes unhelpful).
absl::StatusOr<bool> EqualPair(const Value& a, const Value& b) {
  const BasicKind ka = KindOf(a), kb = KindOf(b);
  if (IsNumber(ka) && IsNumber(kb)) return CompareNumbers(a.get(), b.get()) == 0;
  if (ka != kb) {
    if (a.nil() || b.nil()) return false;  // Go: a missing value is simply unequal
    return CallError(kIncompatible);
  }
  switch (ka) {
    case BasicKind::kBool:
      return a.get().get_bool() == b.get().get_bool();
    case BasicKind::kString:
      return a.get().get_string() == b.get().get_string();
    default:
      break;
  }
  // Both nil, or arrays/objects (not comparable in Go).
  if (a.nil() && b.nil()) return true;
  if (a.nil() || b.nil()) return false;
  return CallError(StrCat("non-comparable types ", GoTypeName(a), ", ", GoTypeName(b)));
}

absl::StatusOr<Value> Eq(std::span<const Value> args, const CallContext&) {
  if (args.size() < 2) return CallError("missing argument for comparison");
  for (size_t i = 1; i < args.size(); ++i) {
    auto eq = EqualPair(args[0], args[i]);
    if (!eq.ok()) return eq.status();
    if (*eq) return Value::Own(true);
  }
  return Value::Own(false);
}

absl::StatusOr<Value> Ne(std::span<const Value> args, const CallContext&) {
  auto eq = EqualPair(args[0], args[1]);
  if (!eq.ok()) return eq.status();
  return Value::Own(!*eq);
}

absl::StatusOr<bool> LessPair(const Value& a, const Value& b) {
  const BasicKind ka = KindOf(a), kb = KindOf(b);
  if (ka == BasicKind::kInvalid || kb == BasicKind::kInvalid || ka == BasicKind::kBool ||
      kb == BasicKind::kBool) {
    return CallError(kInvalidType);
  }
  if (IsNumber(ka) && IsNumber(kb)) return CompareNumbers(a.get(), b.get()) == -1;
  if (ka != kb) return CallError(kIncompatible);
  return a.get().get_string() < b.get().get_string();
}

absl::StatusOr<Value> Lt(std::span<const Value> args, const CallContext&) {
  auto lt = LessPair(args[0], args[1]);
  if (!lt.ok()) return lt.status();
  return Value::Own(*lt);
}
absl::StatusOr<Value> Le(std::span<const Value> args, const CallContext&) {
  auto lt = LessPair(args[0], args[1]);
  if (!lt.ok()) return lt.status();
  if (*lt) return Value::Own(true);
  auto eq = EqualPair(args[0], args[1]);
  if (!eq.ok()) return eq.status();
  return Value::Own(*eq);
}
absl::StatusOr<Value> Gt(std::span<const Value> args, const CallContext& ctx) {
  auto le = Le(args, ctx);
  if (!le.ok()) return le.status();
  return Value::Own(!le->get().get_bool());
}
absl::StatusOr<Value> Ge(std::span<const Value> args, const CallContext&) {
  auto lt = LessPair(args[0], args[1]);
  if (!lt.ok()) return lt.status();
  return Value::Own(!*lt);
}

absl::StatusOr<Value> Not(std::span<const Value> args, const CallContext&) {
  return Value::Own(!IsTrue(args[0]));
}

absl::StatusOr<Value> Len(std::span<const Value> args, const CallContext&) {
  const Value& v = args[0];
  if (!v.valid()) return CallError("len of untyped nil");
  const json::value& j = v.get();
  if (j.is_null()) return CallError("len of nil pointer");
  if (j.is_string()) return Value::Own(static_cast<int64_t>(j.get_string().size()));
  if (j.is_array()) return Value::Own(static_cast<int64_t>(j.get_array().size()));
  if (j.is_object()) return Value::Own(static_cast<int64_t>(j.get_object().size()));
  return CallError(StrCat("len of type ", GoTypeName(j)));
}

// Go's indexArg: an integer index in [0, cap].
absl::StatusOr<int64_t> IndexArg(const Value& index, size_t cap) {
  if (index.nil()) return CallError("cannot index slice/array with nil");
  int64_t x = 0;
  const json::value& j = index.get();
  if (j.is_int64()) {
    x = j.get_int64();
  } else if (j.is_uint64()) {
    if (j.get_uint64() > static_cast<uint64_t>(INT64_MAX)) {
      return CallError(StrCat("index out of range: ", j.get_uint64()));
    }
    x = static_cast<int64_t>(j.get_uint64());
  } else {
    return CallError(StrCat("cannot index slice/array with type ", GoTypeName(j)));
  }
  if (x < 0 || static_cast<uint64_t>(x) > cap) {
    return CallError(StrCat("index out of range: ", x));
  }
  return x;
}

absl::StatusOr<Value> Index(std::span<const Value> args, const CallContext&) {
  Value item = args[0];
  if (!item.valid()) return CallError("index of untyped nil");
  for (size_t i = 1; i < args.size(); ++i) {
    const json::value& j = item.get();
    if (j.is_null()) return CallError("index of nil pointer");
    if (j.is_array() || j.is_string()) {
      const size_t len = j.is_array() ? j.get_array().size() : j.get_string().size();
      auto x = IndexArg(args[i], len);
      if (!x.ok()) return x.status();
      if (static_cast<size_t>(*x) >= len) return CallError(StrCat("index out of range: ", *x));
      if (j.is_array()) {
        item = item.Child(j.get_array()[static_cast<size_t>(*x)]);
      } else {  // Go indexes a string's bytes, giving a uint8
        item = Value::Own(static_cast<uint64_t>(
            static_cast<unsigned char>(j.get_string()[static_cast<size_t>(*x)])));
      }
    } else if (j.is_object()) {
      const Value& key = args[i];
      if (key.nil()) return CallError("value is nil; should be of type string");
      if (!key.get().is_string()) {
        return CallError(StrCat("value has type ", GoTypeName(key), "; should be string"));
      }
      const json::value* found = j.get_object().if_contains(key.get().get_string());
      item = found ? item.Child(*found) : Value::Own(nullptr);
    } else {
      return CallError(StrCat("can't index item of type ", GoTypeName(j)));
    }
  }
  return item;
}

absl::StatusOr<Value> Slice(std::span<const Value> args, const CallContext& ctx) {
  const Value& item = args[0];
  if (item.nil()) return CallError("slice of untyped nil");
  const size_t n = args.size() - 1;
  if (n > 3) return CallError(StrCat("too many slice indexes: ", n));
  const json::value& j = item.get();
  size_t len = 0;
  if (j.is_string()) {
    if (n == 3) return CallError("cannot 3-index slice a string");
    len = j.get_string().size();
  } else if (j.is_array()) {
    len = j.get_array().size();
  } else {
    return CallError(StrCat("can't slice item of type ", GoTypeName(j)));
  }
  int64_t idx[3] = {0, static_cast<int64_t>(len), static_cast<int64_t>(len)};
  for (size_t i = 0; i < n; ++i) {
    auto x = IndexArg(args[i + 1], len);
    if (!x.ok()) return x.status();
    idx[i] = *x;
  }
  if (idx[0] > idx[1]) return CallError(StrCat("invalid slice index: ", idx[0], " > ", idx[1]));
  if (n == 3 && idx[1] > idx[2]) {
    return CallError(StrCat("invalid slice index: ", idx[1], " > ", idx[2]));
  }
  const size_t from = static_cast<size_t>(idx[0]), to = static_cast<size_t>(idx[1]);
  if (j.is_string()) {
    if (absl::Status s = ctx.ChargeMemory(to - from); !s.ok()) return s;
    return Value::Own(json::string(j.get_string().subview(from, to - from)));
  }
  // The elements are copied: charged before.
  uint64_t bytes = 0;
  for (size_t i = from; i < to; ++i) {
    bytes = SatAdd(bytes, sizeof(json::value) + ValueBytes(j.get_array()[i]));
  }
  if (absl::Status s = ctx.ChargeMemory(bytes); !s.ok()) return s;
  json::array out;
  out.reserve(to - from);
  for (size_t i = from; i < to; ++i) out.push_back(j.get_array()[i]);
  return Value::Own(std::move(out));
}

// A function's string result: at most ctx.max_bytes, charged to the budget.
absl::StatusOr<Value> StringResult(absl::StatusOr<std::string> s, const CallContext& ctx) {
  if (!s.ok()) {
    if (IsBudgetError(s.status())) return s.status();
    return CallError(std::string(s.status().message()));
  }
  if (s->size() > ctx.max_bytes) {
    return CallError(StrCat("result exceeds ", ctx.max_bytes, " bytes"));
  }
  if (absl::Status charged = ctx.ChargeMemory(s->size()); !charged.ok()) return charged;
  return Value::Own(json::string(*s));
}

absl::StatusOr<Value> Print(std::span<const Value> args, const CallContext& ctx) {
  return StringResult(Sprint(args, ctx.max_bytes), ctx);
}
absl::StatusOr<Value> Println(std::span<const Value> args, const CallContext& ctx) {
  return StringResult(Sprintln(args, ctx.max_bytes), ctx);
}
absl::StatusOr<Value> Printf(std::span<const Value> args, const CallContext& ctx) {
  auto format = ArgString(args[0]);
  if (!format.ok()) return format.status();
  return StringResult(Sprintf(*format, args.subspan(1), ctx.max_bytes), ctx);
}

// Go's evalArgs: a lone string as is, anything else through fmt.Sprint (a string built, and
// charged, either way).
absl::StatusOr<std::string> EvalArgs(std::span<const Value> args, const CallContext& ctx) {
  absl::StatusOr<std::string> s;
  if (args.size() == 1 && args[0].valid() && args[0].get().is_string()) {
    s = std::string(args[0].get().get_string());
  } else {
    s = Sprint(args, ctx.max_bytes);
  }
  if (!s.ok()) return s;
  if (absl::Status charged = ctx.ChargeMemory(s->size()); !charged.ok()) return charged;
  return s;
}

absl::StatusOr<Value> Html(std::span<const Value> args, const CallContext& ctx) {
  auto s = EvalArgs(args, ctx);
  if (!s.ok()) return StringResult(s.status(), ctx);
  std::string out;
  for (char c : *s) {
    if (out.size() > ctx.max_bytes) break;  // StringResult refuses it
    switch (c) {
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\0':
        out += "\xEF\xBF\xBD";
        break;
      default:
        out += c;
    }
  }
  return StringResult(std::move(out), ctx);
}

absl::StatusOr<Value> Js(std::span<const Value> args, const CallContext& ctx) {
  auto s = EvalArgs(args, ctx);
  if (!s.ok()) return StringResult(s.status(), ctx);
  std::string out;
  char buf[16];
  for (size_t i = 0; i < s->size() && out.size() <= ctx.max_bytes;) {
    const unsigned char c = static_cast<unsigned char>((*s)[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\'':
          out += "\\'";
          break;
        case '"':
          out += "\\\"";
          break;
        case '<':
          out += "\\u003C";
          break;
        case '>':
          out += "\\u003E";
          break;
        case '&':
          out += "\\u0026";
          break;
        case '=':
          out += "\\u003D";
          break;
        default:
          if (c < ' ') {
            std::snprintf(buf, sizeof buf, "\\u%04X", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    size_t size = 0;
    const char32_t r = DecodeRune(*s, i, &size);
    if (IsPrintRune(r)) {
      out.append(*s, i, size);
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(r));
      out += buf;
    }
    i += size;
  }
  return StringResult(std::move(out), ctx);
}

absl::StatusOr<Value> UrlQuery(std::span<const Value> args, const CallContext& ctx) {
  auto s = EvalArgs(args, ctx);
  if (!s.ok()) return StringResult(s.status(), ctx);
  std::string out;
  char buf[8];
  for (char ch : *s) {
    if (out.size() > ctx.max_bytes) break;  // StringResult refuses it
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return StringResult(std::move(out), ctx);
}

absl::StatusOr<Value> Call(std::span<const Value> args, const CallContext&) {
  if (args[0].nil()) return CallError("call of nil");
  return CallError(StrCat("non-function of type ", GoTypeName(args[0])));
}

constexpr Builtin kBuiltins[] = {
    {"and", nullptr, 1, true}, {"or", nullptr, 1, true},    {"not", Not, 1, false},
    {"len", Len, 1, false},    {"index", Index, 1, true},   {"slice", Slice, 1, true},
    {"print", Print, 0, true}, {"printf", Printf, 1, true}, {"println", Println, 0, true},
    {"eq", Eq, 1, true},       {"ne", Ne, 2, false},        {"lt", Lt, 2, false},
    {"le", Le, 2, false},      {"gt", Gt, 2, false},        {"ge", Ge, 2, false},
    {"html", Html, 0, true},   {"js", Js, 0, true},         {"urlquery", UrlQuery, 0, true},
    {"call", Call, 1, true},
};

}  // namespace

absl::StatusOr<std::string_view> ArgString(const Value& v) {
  if (!v.valid()) return ArgTypeError("invalid value; expected string");
  if (!v.get().is_string()) {
    return ArgTypeError(StrCat("wrong type for value; expected string; got ",
                               v.get().is_null() ? "interface {}" : GoTypeName(v)));
  }
  const json::string& s = v.get().get_string();
  return std::string_view(s.data(), s.size());
}

absl::StatusOr<int64_t> ArgInt(const Value& v) {
  if (!v.valid()) return ArgTypeError("invalid value; expected int");
  const json::value& j = v.get();
  if (j.is_int64()) return j.get_int64();
  if (j.is_uint64() && j.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(j.get_uint64());
  }
  return ArgTypeError(StrCat("wrong type for value; expected int; got ",
                             j.is_null() ? "interface {}" : GoTypeName(j)));
}

const Builtin* FindBuiltin(std::string_view name) {
  for (const Builtin& b : kBuiltins) {
    if (b.name == name) return &b;
  }
  for (const Builtin& b : ConsulFunctions()) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

void AddBuiltinNames(std::set<std::string, std::less<>>* names) {
  for (const Builtin& b : kBuiltins) names->emplace(b.name);
  for (const Builtin& b : ConsulFunctions()) names->emplace(b.name);
}

}  // namespace strongroom::tmpl
