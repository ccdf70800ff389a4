// The consul-template functions Vault Agent templates commonly use. Argument order follows
// consul-template, so the piped value comes last: {{ .x | split "," }} is split("," , .x).
// Error messages never repeat the argument values (they may be secrets).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "base/strings.h"
#include "cli/template/base64.h"
#include "cli/template/functions.h"
#include "cli/template/lexer.h"
#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

// Bound on the elements split may produce.
constexpr size_t kMaxSplitElements = 100000;
constexpr size_t npos = std::string_view::npos;

#define SR_ASSIGN_STRING(var, value)            \
  auto var##_or = ArgString(value);             \
  if (!var##_or.ok()) return var##_or.status(); \
  const std::string_view var = *var##_or

// A function's string result: at most ctx.max_bytes, charged to the budget.
absl::StatusOr<Value> Str(std::string s, const CallContext& ctx) {
  if (s.size() > ctx.max_bytes) {
    return CallError(StrCat("result exceeds ", ctx.max_bytes, " bytes"));
  }
  if (absl::Status charged = ctx.ChargeMemory(s.size()); !charged.ok()) return charged;
  return Value::Own(json::string(s));
}

absl::StatusOr<Value> ToJson(std::span<const Value> args, const CallContext& ctx) {
  static const json::value kNull;
  auto s = EncodeJson(args[0].valid() ? args[0].get() : kNull, false, ctx.max_bytes);
  if (!s.ok()) return CallError(std::string(s.status().message()));
  return Str(std::move(*s), ctx);
}

absl::StatusOr<Value> ToJsonPretty(std::span<const Value> args, const CallContext& ctx) {
  static const json::value kNull;
  auto s = EncodeJson(args[0].valid() ? args[0].get() : kNull, true, ctx.max_bytes);
  if (!s.ok()) return CallError(std::string(s.status().message()));
  return Str(std::move(*s), ctx);
}

absl::StatusOr<Value> Encode64(std::span<const Value> args, const CallContext& ctx,
                               const char* alphabet) {
  SR_ASSIGN_STRING(s, args[0]);
  return Str(Base64Encode(s, alphabet), ctx);
}
absl::StatusOr<Value> Decode64(std::span<const Value> args, const CallContext& ctx,
                               const char* alphabet, const char* name) {
  SR_ASSIGN_STRING(s, args[0]);
  std::string out;
  size_t bad = 0;
  if (!Base64Decode(s, alphabet, &out, &bad)) {
    return CallError(StrCat(name, ": illegal base64 data at input byte ", bad));
  }
  return Str(std::move(out), ctx);
}
absl::StatusOr<Value> B64Enc(std::span<const Value> a, const CallContext& c) {
  return Encode64(a, c, kBase64Std);
}
absl::StatusOr<Value> B64Dec(std::span<const Value> a, const CallContext& c) {
  return Decode64(a, c, kBase64Std, "base64Decode");
}
absl::StatusOr<Value> B64UrlEnc(std::span<const Value> a, const CallContext& c) {
  return Encode64(a, c, kBase64Url);
}
absl::StatusOr<Value> B64UrlDec(std::span<const Value> a, const CallContext& c) {
  return Decode64(a, c, kBase64Url, "base64URLDecode");
}

std::optional<std::string> LookupEnv(std::string_view name, const CallContext& ctx) {
  if (ctx.env != nullptr && *ctx.env) return (*ctx.env)(name);
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

absl::StatusOr<Value> Env(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(name, args[0]);
  return Str(LookupEnv(name, ctx).value_or(""), ctx);
}
absl::StatusOr<Value> MustEnv(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(name, args[0]);
  auto v = LookupEnv(name, ctx);
  if (!v) return CallError("mustEnv: the environment variable is not set");
  return Str(std::move(*v), ctx);
}
absl::StatusOr<Value> EnvOrDefault(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(name, args[0]);
  SR_ASSIGN_STRING(def, args[1]);
  auto v = LookupEnv(name, ctx);
  return Str(v ? std::move(*v) : std::string(def), ctx);
}

absl::StatusOr<Value> MapBytes(std::span<const Value> args, const CallContext& ctx, int mode) {
  SR_ASSIGN_STRING(s, args[0]);
  std::string out(s);
  bool at_word_start = true;
  for (char& c : out) {
    const bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
    if (mode == 0 && upper) c = static_cast<char>(c - 'A' + 'a');
    if (mode == 1 && lower) c = static_cast<char>(c - 'a' + 'A');
    if (mode == 2) {
      if (at_word_start && lower) c = static_cast<char>(c - 'a' + 'A');
      const bool word = upper || lower || (c >= '0' && c <= '9') || c == '_' ||
                        static_cast<unsigned char>(c) >= 0x80;
      at_word_start = !word;
    }
  }
  return Str(std::move(out), ctx);
}
absl::StatusOr<Value> ToLower(std::span<const Value> a, const CallContext& c) {
  return MapBytes(a, c, 0);
}
absl::StatusOr<Value> ToUpper(std::span<const Value> a, const CallContext& c) {
  return MapBytes(a, c, 1);
}
absl::StatusOr<Value> ToTitle(std::span<const Value> a, const CallContext& c) {
  return MapBytes(a, c, 2);
}

bool IsGoSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsGoSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsGoSpace(s.back())) s.remove_suffix(1);
  return s;
}

absl::StatusOr<Value> TrimSpaceFn(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(s, args[0]);
  return Str(std::string(TrimSpace(s)), ctx);
}
absl::StatusOr<Value> TrimPrefix(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(prefix, args[0]);
  SR_ASSIGN_STRING(s, args[1]);
  return Str(std::string(s.starts_with(prefix) ? s.substr(prefix.size()) : s), ctx);
}
absl::StatusOr<Value> TrimSuffix(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(suffix, args[0]);
  SR_ASSIGN_STRING(s, args[1]);
  return Str(std::string(s.ends_with(suffix) ? s.substr(0, s.size() - suffix.size()) : s), ctx);
}

absl::StatusOr<Value> Split(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(sep, args[0]);
  SR_ASSIGN_STRING(raw, args[1]);
  const std::string_view s = TrimSpace(raw);
  json::array out;
  if (s.empty()) return Value::Own(std::move(out));
  absl::Status charged;
  auto push = [&](std::string_view part) {
    if (out.size() >= kMaxSplitElements) return false;
    charged = ctx.ChargeMemory(sizeof(json::value) + part.size());
    if (!charged.ok()) return false;
    out.emplace_back(json::string(part));
    return true;
  };
  bool ok = true;
  if (sep.empty()) {  // Go splits into UTF-8 sequences
    for (size_t i = 0; i < s.size() && ok;) {
      size_t size = 0;
      DecodeRune(s, i, &size);
      ok = push(s.substr(i, size));
      i += size;
    }
  } else {
    size_t start = 0;
    for (;;) {
      const size_t x = Find(s, sep, start);
      if (x == std::string_view::npos) {
        ok = push(s.substr(start));
        break;
      }
      if (!(ok = push(s.substr(start, x - start)))) break;
      start = x + sep.size();
    }
  }
  if (!charged.ok()) return charged;
  if (!ok) return CallError(StrCat("split: more than ", kMaxSplitElements, " elements"));
  return Value::Own(std::move(out));
}

absl::StatusOr<Value> Join(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(sep, args[0]);
  const Value& list = args[1];
  if (!list.valid() || !list.get().is_array()) {
    return ArgTypeError(StrCat("wrong type for value; expected []string; got ",
                               list.valid() ? GoTypeName(list) : "<nil>"));
  }
  const json::array& a = list.get().get_array();
  if (absl::Status s = ctx.ChargeWork(SatMul(a.size(), sizeof(json::value))); !s.ok()) return s;
  std::string out;
  bool first = true;
  for (const json::value& e : a) {
    if (!e.is_string()) {
      return ArgTypeError(StrCat("wrong type for value; expected []string; got a list with ",
                                 GoTypeName(e), " elements"));
    }
    if (!first) out.append(sep);
    first = false;
    out.append(e.get_string());
    if (out.size() > ctx.max_bytes) break;
  }
  return Str(std::move(out), ctx);
}

absl::StatusOr<Value> ReplaceAll(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(from, args[0]);
  SR_ASSIGN_STRING(to, args[1]);
  SR_ASSIGN_STRING(s, args[2]);
  std::string out;
  if (from.empty()) {  // Go inserts `to` before every UTF-8 sequence and at the end
    size_t runes = 0;
    for (size_t i = 0; i < s.size(); ++runes) {
      size_t size = 0;
      DecodeRune(s, i, &size);
      i += size;
    }
    if ((runes + 1) > ctx.max_bytes / (to.size() + 1) + 1) {
      return CallError(StrCat("result exceeds ", ctx.max_bytes, " bytes"));
    }
    for (size_t i = 0; i < s.size();) {
      size_t size = 0;
      DecodeRune(s, i, &size);
      StrAppend(&out, to, s.substr(i, size));
      i += size;
    }
    out.append(to);
    return Str(std::move(out), ctx);
  }
  size_t start = 0;
  for (;;) {
    const size_t x = Find(s, from, start);
    if (x == std::string_view::npos) break;
    StrAppend(&out, s.substr(start, x - start), to);
    if (out.size() > ctx.max_bytes) return Str(std::move(out), ctx);
    start = x + from.size();
  }
  out.append(s.substr(start));
  return Str(std::move(out), ctx);
}

// consul-template's `in`: list membership (numbers by value, strings exactly) or substring.
bool In(const Value& list, const Value& needle) {
  if (list.nil() || needle.nil()) return false;
  const json::value& l = list.get();
  const json::value& v = needle.get();
  if (l.is_string()) {
    if (!v.is_string()) return false;
    const json::string& hay = l.get_string();
    const json::string& sub = v.get_string();
    return Find({hay.data(), hay.size()}, {sub.data(), sub.size()}) != npos;
  }
  if (!l.is_array()) return false;
  for (const json::value& e : l.get_array()) {
    if (e.is_string() && v.is_string() && e.get_string() == v.get_string()) return true;
    if (e.is_number() && v.is_number()) {
      const long double a = e.is_int64()    ? static_cast<long double>(e.get_int64())
                            : e.is_uint64() ? static_cast<long double>(e.get_uint64())
                                            : static_cast<long double>(e.get_double());
      const long double b = v.is_int64()    ? static_cast<long double>(v.get_int64())
                            : v.is_uint64() ? static_cast<long double>(v.get_uint64())
                                            : static_cast<long double>(v.get_double());
      if (a == b) return true;
    }
  }
  return false;
}

// A bound on the bytes In(list, needle) reads: the search through a string (linear, see Find),
// or an element and at most the needle's bytes for each element of an array.
uint64_t InWork(const Value& list, const Value& needle) {
  if (list.nil() || needle.nil()) return 0;
  const json::value& l = list.get();
  const uint64_t n = needle.get().is_string() ? needle.get().get_string().size() : 0;
  if (l.is_string()) return SatAdd(l.get_string().size(), n);
  if (l.is_array()) return SatMul(l.get_array().size(), SatAdd(sizeof(json::value), n));
  return 0;
}

absl::StatusOr<Value> InFn(std::span<const Value> args, const CallContext& ctx) {
  if (absl::Status s = ctx.ChargeWork(InWork(args[0], args[1])); !s.ok()) return s;
  return Value::Own(In(args[0], args[1]));
}
absl::StatusOr<Value> Contains(std::span<const Value> args, const CallContext& ctx) {
  if (absl::Status s = ctx.ChargeWork(InWork(args[1], args[0])); !s.ok()) return s;
  return Value::Own(In(args[1], args[0]));
}

// containsAll/Any/None/NotAll(needles, haystack).
absl::StatusOr<Value> ContainsSome(std::span<const Value> args, const CallContext& ctx,
                                   bool want_all, bool negate) {
  const Value& needles = args[0];
  if (!needles.valid() || !needles.get().is_array()) {
    return ArgTypeError(
        StrCat("wrong type for value; expected []interface {}; got ", GoTypeName(needles)));
  }
  // Every needle may be compared with every element: charged before, whole.
  uint64_t work = 0;
  for (const json::value& n : needles.get().get_array()) {
    work = SatAdd(work, SatAdd(sizeof(json::value), InWork(args[1], needles.Child(n))));
  }
  if (absl::Status s = ctx.ChargeWork(work); !s.ok()) return s;
  bool result = want_all;
  for (const json::value& n : needles.get().get_array()) {
    const bool found = In(args[1], needles.Child(n));
    if (want_all && !found) result = false;
    if (!want_all && found) result = true;
  }
  return Value::Own(negate ? !result : result);
}
absl::StatusOr<Value> ContainsAll(std::span<const Value> a, const CallContext& c) {
  return ContainsSome(a, c, true, false);
}
absl::StatusOr<Value> ContainsAny(std::span<const Value> a, const CallContext& c) {
  return ContainsSome(a, c, false, false);
}
absl::StatusOr<Value> ContainsNone(std::span<const Value> a, const CallContext& c) {
  return ContainsSome(a, c, false, true);
}
absl::StatusOr<Value> ContainsNotAll(std::span<const Value> a, const CallContext& c) {
  return ContainsSome(a, c, true, true);
}

absl::StatusOr<Value> ParseJson(std::span<const Value> args, const CallContext& ctx) {
  SR_ASSIGN_STRING(s, args[0]);
  if (s.empty()) return Value::Own(json::object());
  json::parse_options opts;
  opts.max_depth = kMaxValueDepth - 1;
  boost::system::error_code ec;
  json::value v = json::parse(s, ec, {}, opts);
  if (ec) return CallError("parseJSON: the text is not valid JSON");
  if (absl::Status charged = ctx.ChargeMemory(ValueBytes(v)); !charged.ok()) return charged;
  return Value::Own(std::move(v));
}

// strconv.ParseInt/ParseUint(s, 10, 64): optional sign (ParseInt only), decimal digits.
absl::StatusOr<Value> ParseIntegral(std::span<const Value> args, bool is_signed) {
  const char* name = is_signed ? "parseInt" : "parseUint";
  SR_ASSIGN_STRING(s, args[0]);
  if (s.empty()) return is_signed ? Value::Own(int64_t{0}) : Value::Own(uint64_t{0});
  std::string_view digits = s;
  bool negative = false;
  if (is_signed && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty()) return CallError(StrCat(name, ": invalid syntax"));
  uint64_t n = 0;
  bool range = false;
  for (char c : digits) {
    if (c < '0' || c > '9') return CallError(StrCat(name, ": invalid syntax"));
    const unsigned d = static_cast<unsigned>(c - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) range = true;
    if (!range) n = n * 10 + d;
  }
  if (!is_signed) {
    if (range) return CallError(StrCat(name, ": value out of range"));
    return Value::Own(n);
  }
  const uint64_t limit = static_cast<uint64_t>(INT64_MAX) + (negative ? 1 : 0);
  if (range || n > limit) return CallError(StrCat(name, ": value out of range"));
  return Value::Own(negative ? static_cast<int64_t>(0 - n) : static_cast<int64_t>(n));
}
absl::StatusOr<Value> ParseInt(std::span<const Value> a, const CallContext&) {
  return ParseIntegral(a, true);
}
absl::StatusOr<Value> ParseUint(std::span<const Value> a, const CallContext&) {
  return ParseIntegral(a, false);
}

absl::StatusOr<Value> ParseFloat(std::span<const Value> args, const CallContext&) {
  SR_ASSIGN_STRING(s, args[0]);
  if (s.empty()) return Value::Own(0.0);
  const std::string text(s);
  for (char c : text) {
    if (IsGoSpace(c) || c == '\0') return CallError("parseFloat: invalid syntax");
  }
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return CallError("parseFloat: invalid syntax");
  if (std::isinf(v) && text.find_first_of("iI") == std::string::npos) {
    return CallError("parseFloat: value out of range");
  }
  return Value::Own(v);
}

absl::StatusOr<Value> ParseBool(std::span<const Value> args, const CallContext&) {
  SR_ASSIGN_STRING(s, args[0]);
  if (s.empty()) return Value::Own(false);
  if (bool b = false; ParseGoBool(s, &b)) return Value::Own(b);
  return CallError("parseBool: invalid syntax");
}

absl::StatusOr<Value> Indent(std::span<const Value> args, const CallContext& ctx) {
  auto spaces = ArgInt(args[0]);
  if (!spaces.ok()) return spaces.status();
  SR_ASSIGN_STRING(s, args[1]);
  if (*spaces < 0) return CallError("indent value must be a positive integer");
  const size_t lines = 1 + static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
  const uint64_t width = static_cast<uint64_t>(*spaces);
  if (width > ctx.max_bytes || lines * width > ctx.max_bytes - std::min(ctx.max_bytes, s.size())) {
    return CallError(StrCat("result exceeds ", ctx.max_bytes, " bytes"));
  }
  std::string out;
  bool at_line_start = true;
  for (char c : s) {
    if (at_line_start && c != '\n') out.append(static_cast<size_t>(width), ' ');
    out.push_back(c);
    at_line_start = c == '\n';
  }
  return Str(std::move(out), ctx);
}

// consul-template arithmetic: f(b, a) computes a OP b (the piped value is a).
absl::StatusOr<Value> Arith(std::span<const Value> args, char op, const char* name) {
  const Value& b = args[0];
  const Value& a = args[1];
  if (a.nil() || b.nil() || !a.get().is_number() || !b.get().is_number()) {
    return CallError(StrCat(name, ": unknown type for value (",
                            a.nil() || !a.get().is_number() ? GoTypeName(a) : GoTypeName(b), ")"));
  }
  const json::value& x = a.get();
  const json::value& y = b.get();
  if (x.is_double() || y.is_double()) {
    auto d = [](const json::value& v) {
      return v.is_int64()    ? static_cast<double>(v.get_int64())
             : v.is_uint64() ? static_cast<double>(v.get_uint64())
                             : v.get_double();
    };
    const double p = d(x), q = d(y);
    switch (op) {
      case '+':
        return Value::Own(p + q);
      case '-':
        return Value::Own(p - q);
      case '*':
        return Value::Own(p * q);
      case '/':
        if (q == 0) return CallError(StrCat(name, ": division by zero"));
        return Value::Own(p / q);
      default:
        return CallError(StrCat(name, ": unsupported for floats"));
    }
  }
  if (x.is_uint64() && y.is_uint64()) {
    const uint64_t p = x.get_uint64(), q = y.get_uint64();
    switch (op) {
      case '+':
        return Value::Own(p + q);
      case '-':
        return Value::Own(p - q);
      case '*':
        return Value::Own(p * q);
      default:
        if (q == 0) return CallError(StrCat(name, ": division by zero"));
        return Value::Own(op == '/' ? p / q : p % q);
    }
  }
  // Signed (wrapping like Go's int64 arithmetic).
  const uint64_t p = x.is_int64() ? static_cast<uint64_t>(x.get_int64()) : x.get_uint64();
  const uint64_t q = y.is_int64() ? static_cast<uint64_t>(y.get_int64()) : y.get_uint64();
  const int64_t sp = static_cast<int64_t>(p), sq = static_cast<int64_t>(q);
  switch (op) {
    case '+':
      return Value::Own(static_cast<int64_t>(p + q));
    case '-':
      return Value::Own(static_cast<int64_t>(p - q));
    case '*':
      return Value::Own(static_cast<int64_t>(p * q));
    default:
      if (sq == 0) return CallError(StrCat(name, ": division by zero"));
      if (sp == INT64_MIN && sq == -1) return Value::Own(op == '/' ? sp : int64_t{0});
      return Value::Own(op == '/' ? sp / sq : sp % sq);
  }
}
absl::StatusOr<Value> Add(std::span<const Value> a, const CallContext&) {
  return Arith(a, '+', "add");
}
absl::StatusOr<Value> Subtract(std::span<const Value> a, const CallContext&) {
  return Arith(a, '-', "subtract");
}
absl::StatusOr<Value> Multiply(std::span<const Value> a, const CallContext&) {
  return Arith(a, '*', "multiply");
}
absl::StatusOr<Value> Divide(std::span<const Value> a, const CallContext&) {
  return Arith(a, '/', "divide");
}
absl::StatusOr<Value> Modulo(std::span<const Value> a, const CallContext&) {
  return Arith(a, '%', "modulo");
}

constexpr Builtin kConsul[] = {
    {"toJSON", ToJson, 1, false},
    {"toJSONPretty", ToJsonPretty, 1, false},
    {"base64Encode", B64Enc, 1, false},
    {"base64Decode", B64Dec, 1, false},
    {"base64URLEncode", B64UrlEnc, 1, false},
    {"base64URLDecode", B64UrlDec, 1, false},
    {"env", Env, 1, false},
    {"mustEnv", MustEnv, 1, false},
    {"envOrDefault", EnvOrDefault, 2, false},
    {"toLower", ToLower, 1, false},
    {"toUpper", ToUpper, 1, false},
    {"toTitle", ToTitle, 1, false},
    {"trimSpace", TrimSpaceFn, 1, false},
    {"trimPrefix", TrimPrefix, 2, false},
    {"trimSuffix", TrimSuffix, 2, false},
    {"split", Split, 2, false},
    {"join", Join, 2, false},
    {"replaceAll", ReplaceAll, 3, false},
    {"contains", Contains, 2, false},
    {"in", InFn, 2, false},
    {"containsAll", ContainsAll, 2, false},
    {"containsAny", ContainsAny, 2, false},
    {"containsNone", ContainsNone, 2, false},
    {"containsNotAll", ContainsNotAll, 2, false},
    {"parseJSON", ParseJson, 1, false},
    {"parseInt", ParseInt, 1, false},
    {"parseUint", ParseUint, 1, false},
    {"parseFloat", ParseFloat, 1, false},
    {"parseBool", ParseBool, 1, false},
    {"indent", Indent, 2, false},
    {"add", Add, 2, false},
    {"subtract", Subtract, 2, false},
    {"multiply", Multiply, 2, false},
    {"divide", Divide, 2, false},
    {"modulo", Modulo, 2, false},
};

}  // namespace

std::span<const Builtin> ConsulFunctions() { return kConsul; }

}  // namespace strongroom::tmpl
