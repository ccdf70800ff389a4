// Values: Go's type names, truth and map order, and Go's shortest float formatting.
#include "cli/template/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "cli/template/strings.h"

namespace strongroom::tmpl {

std::string GoTypeName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "<nil>";
    case json::kind::bool_:
      return "bool";
    case json::kind::int64:
      return "int";
    case json::kind::uint64:
      return "uint64";
    case json::kind::double_:
      return "float64";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "[]interface {}";
    case json::kind::object:
      return "map[string]interface {}";
  }
  return "<nil>";
}

std::string GoTypeName(const Value& v) { return v.valid() ? GoTypeName(v.get()) : "<nil>"; }

bool IsTrue(const Value& v) {
  if (!v.valid()) return false;
  const json::value& j = v.get();
  switch (j.kind()) {
    case json::kind::null:
      return false;
    case json::kind::bool_:
      return j.get_bool();
    case json::kind::int64:
      return j.get_int64() != 0;
    case json::kind::uint64:
      return j.get_uint64() != 0;
    case json::kind::double_:
      return j.get_double() != 0;
    case json::kind::string:
      return !j.get_string().empty();
    case json::kind::array:
      return !j.get_array().empty();
    case json::kind::object:
      return !j.get_object().empty();
  }
  return false;
}

std::vector<const json::key_value_pair*> SortedEntries(const json::object& o) {
  std::vector<const json::key_value_pair*> out;
  out.reserve(o.size());
  for (const json::key_value_pair& kv : o) out.push_back(&kv);
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->key() < b->key(); });
  return out;
}

std::string FormatShortestFloat(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  // sci is [-]d[.ddd]e[+-]xx
  bool negative = false;
  if (!sci.empty() && sci[0] == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exp < -4 || exp >= 6) {
    out += digits[0];
    if (digits.size() > 1) StrAppend(&out, ".", digits.substr(1));
    const int a = exp < 0 ? -exp : exp;
    StrAppend(&out, exp < 0 ? "e-" : "e+", a < 10 ? "0" : "", a);
    return out;
  }
  if (exp < 0) {
    StrAppend(&out, "0.", std::string(static_cast<size_t>(-exp - 1), '0'), digits);
    return out;
  }
  const size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) {
    StrAppend(&out, digits, std::string(int_len - digits.size(), '0'));
  } else {
    StrAppend(&out, digits.substr(0, int_len), ".", digits.substr(int_len));
  }
  return out;
}

}  // namespace strongroom::tmpl
