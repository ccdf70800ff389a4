// Go's fmt rules for the values templates handle (value.h).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "cli/template/lexer.h"
#include "cli/template/literal.h"
#include "cli/template/strings.h"
#include "cli/template/value.h"

namespace strongroom::tmpl {
namespace {

// Go's fmt refuses widths and precisions past this (tooLarge).
constexpr long kMaxFmtNumber = 1000000;

struct Flags {
  bool plus = false, minus = false, sharp = false, space = false, zero = false;
  bool wid_present = false, prec_present = false;
  long wid = 0, prec = 0;
};

size_t RuneCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t size = 0;
    DecodeRune(s, i, &size);
    i += size;
    ++n;
  }
  return n;
}

class Printer {
 public:
  explicit Printer(size_t max_bytes) : max_(max_bytes) {}

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::string& buf() { return buf_; }

  void Fail(std::string message) {
    if (ok_) error_ = std::move(message);
    ok_ = false;
  }
  bool CheckSize() {
    if (buf_.size() > max_) Fail(StrCat("output exceeds ", max_, " bytes"));
    return ok_;
  }

  // Pads `s` to the width in f_ (counting runes).
  void Pad(std::string_view s, bool allow_zero = true) {
    if (!f_.wid_present || f_.wid == 0) {
      buf_.append(s);
      return;
    }
    const size_t n = RuneCount(s);
    const size_t width = static_cast<size_t>(f_.wid);
    if (width <= n) {
      buf_.append(s);
      return;
    }
    if (width > max_) {
      Fail(StrCat("printf width exceeds the output limit of ", max_, " bytes"));
      return;
    }
    const char fill = (f_.zero && allow_zero && !f_.minus) ? '0' : ' ';
    if (f_.minus) {
      buf_.append(s);
      buf_.append(width - n, ' ');
    } else {
      buf_.append(width - n, fill);
      buf_.append(s);
    }
  }

  // Numbers: zero padding goes after the sign.
  void PadNumber(std::string s) {
    if (f_.zero && !f_.minus && f_.wid_present && !s.empty() &&
        static_cast<size_t>(f_.wid) > s.size()) {
      const size_t width = static_cast<size_t>(f_.wid);
      if (width > max_) {
        Fail(StrCat("printf width exceeds the output limit of ", max_, " bytes"));
        return;
      }
      size_t sign = (s[0] == '+' || s[0] == '-' || s[0] == ' ') ? 1 : 0;
      if (s.size() > sign + 1 && s[sign] == '0' && (s[sign + 1] == 'x' || s[sign + 1] == 'X')) {
        sign += 2;
      }
      s.insert(sign, width - s.size(), '0');
      buf_.append(s);
      return;
    }
    const bool zero = f_.zero;
    f_.zero = false;
    Pad(s);
    f_.zero = zero;
  }

  void BadVerb(char verb, const json::value* v) {
    const Flags saved = f_;
    f_ = Flags{};
    StrAppend(&buf_, "%!", std::string_view(&verb, 1), "(");
    if (v == nullptr || v->is_null()) {
      buf_ += "<nil>";
    } else {
      StrAppend(&buf_, GoTypeName(*v), "=");
      PrintValue(*v, 'v', 0);
    }
    buf_ += ')';
    f_ = saved;
  }

  void FormatInteger(bool negative, uint64_t magnitude, char verb, const json::value& v) {
    unsigned base = 10;
    switch (verb) {
      case 'v':
      case 'd':
        break;
      case 'b':
        base = 2;
        break;
      case 'o':
      case 'O':
        base = 8;
        break;
      case 'x':
      case 'X':
        base = 16;
        break;
      case 'c': {
        std::string s;
        AppendRune(&s,
                   negative || magnitude > 0x10FFFF ? 0xFFFD : static_cast<char32_t>(magnitude));
        Pad(s);
        return;
      }
      case 'q':
        Pad(GoQuoteRune(negative || magnitude > 0x10FFFF ? 0xFFFD
                                                         : static_cast<char32_t>(magnitude)));
        return;
      case 'U': {
        char tmp[32];
        std::snprintf(tmp, sizeof tmp, "U+%04llX", static_cast<unsigned long long>(magnitude));
        std::string s = negative ? StrCat("-", tmp) : tmp;
        if (f_.sharp && !negative && magnitude <= 0x10FFFF &&
            IsPrintRune(static_cast<char32_t>(magnitude))) {
          s += " '";
          AppendRune(&s, static_cast<char32_t>(magnitude));
          s += "'";
        }
        Pad(s);
        return;
      }
      default:
        BadVerb(verb, &v);
        return;
    }
    std::string digits;
    const char* alphabet = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    for (uint64_t m = magnitude; m > 0; m /= base) digits.push_back(alphabet[m % base]);
    std::reverse(digits.begin(), digits.end());
    if (f_.prec_present) {
      if (f_.prec == 0 && magnitude == 0) digits.clear();
      if (digits.size() < static_cast<size_t>(f_.prec)) {
        digits.insert(0, static_cast<size_t>(f_.prec) - digits.size(), '0');
      }
    } else if (digits.empty()) {
      digits = "0";
    }
    std::string prefix;
    if (negative) {
      prefix = "-";
    } else if (f_.plus) {
      prefix = "+";
    } else if (f_.space) {
      prefix = " ";
    }
    if (verb == 'O') prefix += "0o";
    if (f_.sharp) {
      if (base == 16) prefix += verb == 'X' ? "0X" : "0x";
      if (base == 2) prefix += "0b";
      if (base == 8 && verb == 'o' && (digits.empty() || digits[0] != '0')) prefix += "0";
    }
    const bool saved_zero = f_.zero;
    if (f_.prec_present) f_.zero = false;  // Go ignores the 0 flag when a precision is given
    PadNumber(prefix + digits);
    f_.zero = saved_zero;
  }

  void FormatFloat(double d, char verb, const json::value& v) {
    std::string s;
    if (std::isnan(d)) {
      s = "NaN";
    } else if (std::isinf(d)) {
      s = d > 0 ? "+Inf" : "-Inf";
    } else {
      switch (verb) {
        case 'v':
        case 'g':
        case 'G':
        case 'e':
        case 'E':
        case 'f':
        case 'F': {
          if ((verb == 'v' || verb == 'g' || verb == 'G') && !f_.prec_present) {
            s = FormatShortestFloat(d);
            if (verb == 'G') {
              for (char& c : s) c = c == 'e' ? 'E' : c;
            }
            break;
          }
          const int prec = f_.prec_present ? static_cast<int>(f_.prec) : 6;
          const char spec = verb == 'v' ? 'g' : (verb == 'F' ? 'f' : verb);
          const char fmt[] = {'%', '.', '*', spec, '\0'};
          const int n = std::snprintf(nullptr, 0, fmt, prec, d);
          if (n < 0 || static_cast<size_t>(n) > max_) {
            Fail(StrCat("printf result exceeds ", max_, " bytes"));
            return;
          }
          s.resize(static_cast<size_t>(n) + 1);
          std::snprintf(s.data(), s.size(), fmt, prec, d);
          s.resize(static_cast<size_t>(n));
          break;
        }
        default:
          BadVerb(verb, &v);
          return;
      }
    }
    if (!s.empty() && s[0] != '-' && s[0] != '+') {
      if (f_.plus) {
        s.insert(0, "+");
      } else if (f_.space) {
        s.insert(0, " ");
      }
    } else if (s[0] == '+' && !f_.plus && s != "+Inf") {
      s.erase(0, 1);
    } else if (s == "+Inf" && !f_.plus) {
      s = f_.space ? " Inf" : "+Inf";
    }
    if (std::isnan(d) || std::isinf(d)) {
      Pad(s, false);
      return;
    }
    PadNumber(std::move(s));
  }

  void FormatString(std::string_view s, char verb, const json::value& v) {
    switch (verb) {
      case 'v':
      case 's': {
        if (f_.prec_present) {
          size_t i = 0;
          for (long n = 0; n < f_.prec && i < s.size(); ++n) {
            size_t size = 0;
            DecodeRune(s, i, &size);
            i += size;
          }
          s = s.substr(0, i);
        }
        Pad(s);
        return;
      }
      case 'q':
        if (f_.sharp && CanBackquote(s)) {
          Pad(StrCat("`", s, "`"));
        } else {
          Pad(GoQuote(s));
        }
        return;
      case 'x':
      case 'X': {
        const char* alphabet = verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
        size_t n = s.size();
        if (f_.prec_present && static_cast<size_t>(f_.prec) < n) n = static_cast<size_t>(f_.prec);
        std::string out;
        for (size_t i = 0; i < n; ++i) {
          if (i > 0 && f_.space) out += ' ';
          if (f_.sharp && (i == 0 || f_.space)) out += verb == 'X' ? "0X" : "0x";
          out += alphabet[static_cast<unsigned char>(s[i]) >> 4];
          out += alphabet[static_cast<unsigned char>(s[i]) & 15];
        }
        Pad(out);
        return;
      }
      default:
        BadVerb(verb, &v);
    }
  }

  // fmt's printValue for a JSON value; depth > 0 inside arrays and objects.
  void PrintValue(const json::value& v, char verb, int depth) {
    if (!ok_) return;
    if (depth > kMaxValueDepth) {
      Fail("value nested too deeply to print");
      return;
    }
    if (buf_.size() > max_) {
      CheckSize();
      return;
    }
    switch (v.kind()) {
      case json::kind::null:
        if (depth > 0 || verb == 'v' || verb == 'T') {
          Pad("<nil>");
        } else {
          BadVerb(verb, nullptr);
        }
        return;
      case json::kind::bool_:
        if (verb == 't' || verb == 'v') {
          Pad(v.get_bool() ? "true" : "false");
        } else {
          BadVerb(verb, &v);
        }
        return;
      case json::kind::int64: {
        const int64_t i = v.get_int64();
        const uint64_t mag = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
        FormatInteger(i < 0, mag, verb, v);
        return;
      }
      case json::kind::uint64:
        FormatInteger(false, v.get_uint64(), verb, v);
        return;
      case json::kind::double_:
        FormatFloat(v.get_double(), verb, v);
        return;
      case json::kind::string:
        FormatString(v.get_string(), verb, v);
        return;
      case json::kind::array: {
        buf_ += '[';
        bool first = true;
        for (const json::value& e : v.get_array()) {
          if (!first) buf_ += ' ';
          first = false;
          PrintValue(e, verb, depth + 1);
          if (!ok_) return;
        }
        buf_ += ']';
        return;
      }
      case json::kind::object: {
        buf_ += "map[";
        bool first = true;
        for (const json::key_value_pair* kv : SortedEntries(v.get_object())) {
          if (!first) buf_ += ' ';
          first = false;
          FormatString(kv->key(), verb, v);
          buf_ += ':';
          PrintValue(kv->value(), verb, depth + 1);
          if (!ok_) return;
        }
        buf_ += ']';
        return;
      }
    }
  }

  // One operand of Sprint/Sprintf; invalid values print as Go's nil.
  void PrintArg(const Value& v, char verb) {
    static const json::value kNull;
    PrintValue(v.valid() ? v.get() : kNull, verb, 0);
  }

  Flags f_;

 private:
  size_t max_;
  std::string buf_;
  bool ok_ = true;
  std::string error_;
};

bool IsStringArg(const Value& v) { return v.valid() && v.get().is_string(); }

absl::StatusOr<std::string> Finish(Printer& p) {
  if (p.ok()) p.CheckSize();
  if (!p.ok()) return absl::InvalidArgumentError(p.error());
  return std::move(p.buf());
}

// Go's parsenum: digits at format[*i]; false if none, or (like Go) when absurdly large.
bool ParseNum(std::string_view format, size_t* i, long* num) {
  bool isnum = false;
  *num = 0;
  for (; *i < format.size() && format[*i] >= '0' && format[*i] <= '9'; ++*i) {
    if (*num > kMaxFmtNumber) {
      *i = format.size();
      return false;
    }
    *num = *num * 10 + (format[*i] - '0');
    isnum = true;
  }
  return isnum;
}

// An int argument for '*'; false if it is not an int or too large.
bool IntFromArg(std::span<const Value> args, size_t* arg_num, long* num) {
  if (*arg_num >= args.size()) return false;
  const Value& v = args[(*arg_num)++];
  if (!v.valid()) return false;
  int64_t n = 0;
  if (v.get().is_int64()) {
    n = v.get().get_int64();
  } else if (v.get().is_uint64() && v.get().get_uint64() <= static_cast<uint64_t>(kMaxFmtNumber)) {
    n = static_cast<int64_t>(v.get().get_uint64());
  } else {
    return false;
  }
  if (n > kMaxFmtNumber || n < -kMaxFmtNumber) return false;
  *num = static_cast<long>(n);
  return true;
}

}  // namespace

absl::StatusOr<std::string> Sprint(std::span<const Value> args, size_t max_bytes) {
  Printer p(max_bytes);
  bool prev_string = false;
  for (size_t i = 0; i < args.size() && p.ok(); ++i) {
    const bool is_string = IsStringArg(args[i]);
    if (i > 0 && !is_string && !prev_string) p.buf() += ' ';
    p.PrintArg(args[i], 'v');
    prev_string = is_string;
  }
  return Finish(p);
}

absl::StatusOr<std::string> Sprintln(std::span<const Value> args, size_t max_bytes) {
  Printer p(max_bytes);
  for (size_t i = 0; i < args.size() && p.ok(); ++i) {
    if (i > 0) p.buf() += ' ';
    p.PrintArg(args[i], 'v');
  }
  p.buf() += '\n';
  return Finish(p);
}

absl::StatusOr<std::string> PrintForAction(const Value& v, size_t max_bytes) {
  if (!v.valid()) return std::string("<no value>");
  Printer p(max_bytes);
  p.PrintArg(v, 'v');
  return Finish(p);
}

absl::StatusOr<std::string> Sprintf(std::string_view format, std::span<const Value> args,
                                    size_t max_bytes) {
  Printer p(max_bytes);
  std::string& buf = p.buf();
  size_t arg_num = 0;
  bool reordered = false;
  size_t i = 0;
  while (i < format.size() && p.ok()) {
    const size_t pct = format.find('%', i);
    if (pct == std::string_view::npos) {
      buf.append(format.substr(i));
      break;
    }
    buf.append(format.substr(i, pct - i));
    i = pct + 1;
    p.f_ = Flags{};
    for (; i < format.size(); ++i) {
      const char c = format[i];
      if (c == '#') {
        p.f_.sharp = true;
      } else if (c == '0') {
        p.f_.zero = !p.f_.minus;
      } else if (c == '+') {
        p.f_.plus = true;
      } else if (c == '-') {
        p.f_.minus = true;
        p.f_.zero = false;
      } else if (c == ' ') {
        p.f_.space = true;
      } else {
        break;
      }
    }
    // Argument index [n].
    auto arg_index = [&]() {
      if (i < format.size() && format[i] == '[') {
        reordered = true;
        const size_t close = format.find(']', i);
        long n = 0;
        size_t j = i + 1;
        if (close == std::string_view::npos || !ParseNum(format.substr(0, close), &j, &n) ||
            j != close || n < 1 || static_cast<size_t>(n) > args.size()) {
          i = close == std::string_view::npos ? format.size() : close + 1;
          return false;
        }
        arg_num = static_cast<size_t>(n - 1);
        i = close + 1;
      }
      return true;
    };
    bool good_index = arg_index();
    if (i < format.size() && format[i] == '*') {
      ++i;
      p.f_.wid_present = IntFromArg(args, &arg_num, &p.f_.wid);
      if (!p.f_.wid_present) buf += "%!(BADWIDTH)";
      if (p.f_.wid < 0) {
        p.f_.wid = -p.f_.wid;
        p.f_.minus = true;
        p.f_.zero = false;
      }
    } else {
      p.f_.wid_present = ParseNum(format, &i, &p.f_.wid);
    }
    if (i + 1 <= format.size() && i < format.size() && format[i] == '.') {
      ++i;
      good_index = good_index && arg_index();
      if (i < format.size() && format[i] == '*') {
        ++i;
        p.f_.prec_present = IntFromArg(args, &arg_num, &p.f_.prec);
        if (p.f_.prec < 0) {
          p.f_.prec = 0;
          p.f_.prec_present = false;
        }
        if (!p.f_.prec_present) buf += "%!(BADPREC)";
      } else {
        p.f_.prec_present = ParseNum(format, &i, &p.f_.prec);
        if (!p.f_.prec_present) {
          p.f_.prec = 0;
          p.f_.prec_present = true;
        }
      }
    }
    good_index = good_index && arg_index();
    if (i >= format.size()) {
      buf += "%!(NOVERB)";
      break;
    }
    size_t size = 0;
    const char32_t verb_rune = DecodeRune(format, i, &size);
    i += size;
    if (verb_rune == '%') {
      buf += '%';
      continue;
    }
    std::string verb_text;
    AppendRune(&verb_text, verb_rune);
    if (!good_index) {
      StrAppend(&buf, "%!", verb_text, "(BADINDEX)");
      continue;
    }
    if (arg_num >= args.size()) {
      StrAppend(&buf, "%!", verb_text, "(MISSING)");
      continue;
    }
    const char verb = verb_rune < 0x80 ? static_cast<char>(verb_rune) : '?';
    if (verb == 'T') {
      p.Pad(GoTypeName(args[arg_num++]));
      continue;
    }
    if (verb == 'w') {  // Sprintf treats %w as a bad verb
      p.BadVerb('w', args[arg_num].valid() ? &args[arg_num].get() : nullptr);
      ++arg_num;
      continue;
    }
    p.PrintArg(args[arg_num++], verb);
    p.CheckSize();
  }
  if (p.ok() && !reordered && arg_num < args.size()) {
    p.f_ = Flags{};
    buf += "%!(EXTRA ";
    for (size_t k = arg_num; k < args.size(); ++k) {
      if (k > arg_num) buf += ", ";
      if (args[k].nil()) {
        buf += "<nil>";
      } else {
        StrAppend(&buf, GoTypeName(args[k]), "=");
        p.PrintArg(args[k], 'v');
      }
    }
    buf += ')';
  }
  return Finish(p);
}

}  // namespace strongroom::tmpl
