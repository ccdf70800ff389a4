#include "cli/template/literal.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cli/template/lexer.h"

namespace strongroom::tmpl {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// One (possibly escaped) character of a quoted literal starting at s[*i]. Appends its bytes to
// `out` and returns its value as a rune (bytes from \x and octal escapes are values < 256).
bool UnquoteChar(std::string_view s, size_t* i, char quote, std::string* out, char32_t* value) {
  if (*i >= s.size()) return false;
  const char c = s[*i];
  if (c == quote && (quote == '\'' || quote == '"')) return false;
  if (static_cast<unsigned char>(c) >= 0x80) {
    size_t size = 0;
    const char32_t r = DecodeRune(s, *i, &size);
    AppendRune(out, r);
    *i += size;
    *value = r;
    return true;
  }
  if (c != '\\') {
    out->push_back(c);
    ++*i;
    *value = static_cast<unsigned char>(c);
    return true;
  }
  if (*i + 1 >= s.size()) return false;
  const char e = s[*i + 1];
  *i += 2;
  char simple = 0;
  switch (e) {
    case 'a':
      simple = '\a';
      break;
    case 'b':
      simple = '\b';
      break;
    case 'f':
      simple = '\f';
      break;
    case 'n':
      simple = '\n';
      break;
    case 'r':
      simple = '\r';
      break;
    case 't':
      simple = '\t';
      break;
    case 'v':
      simple = '\v';
      break;
    case '\\':
      simple = '\\';
      break;
    case '\'':
    case '"':
      if (e != quote) return false;
      simple = e;
      break;
    default:
      break;
  }
  if (simple != 0) {
    out->push_back(simple);
    *value = static_cast<unsigned char>(simple);
    return true;
  }
  if (e == 'x' || e == 'u' || e == 'U') {
    const size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
    if (*i + n > s.size()) return false;
    char32_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      const int h = HexValue(s[*i + k]);
      if (h < 0) return false;
      v = (v << 4) | static_cast<char32_t>(h);
    }
    *i += n;
    if (e == 'x') {
      out->push_back(static_cast<char>(v));
    } else {
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
      AppendRune(out, v);
    }
    *value = v;
    return true;
  }
  if (e >= '0' && e <= '7') {
    if (*i + 2 > s.size()) return false;
    char32_t v = static_cast<char32_t>(e - '0');
    for (size_t k = 0; k < 2; ++k) {
      const char d = s[*i + k];
      if (d < '0' || d > '7') return false;
      v = (v << 3) | static_cast<char32_t>(d - '0');
    }
    if (v > 255) return false;
    *i += 2;
    out->push_back(static_cast<char>(v));
    *value = v;
    return true;
  }
  return false;
}

// Go's underscoreOK: underscores only between digits or after a base prefix.
bool UnderscoreOk(std::string_view s) {
  char saw = '^';
  size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  bool hex = false;
  if (s.size() >= 2 && s[0] == '0' &&
      (Lower(s[1]) == 'b' || Lower(s[1]) == 'o' || Lower(s[1]) == 'x')) {
    i = 2;
    saw = '0';
    hex = Lower(s[1]) == 'x';
  }
  for (; i < s.size(); ++i) {
    const char c = Lower(s[i]);
    if ((c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f')) {
      saw = '0';
      continue;
    }
    if (c == '_') {
      if (saw != '0') return false;
      saw = '_';
      continue;
    }
    if (saw == '_') return false;
    saw = '!';
  }
  return saw != '_';
}

// strconv.ParseUint(s, 0, 64) on the magnitude (no sign).
std::optional<uint64_t> ParseUnsigned(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const std::string_view whole = s;
  unsigned base = 10;
  if (s[0] == '0') {
    if (s.size() >= 3 && Lower(s[1]) == 'b') {
      base = 2, s.remove_prefix(2);
    } else if (s.size() >= 3 && Lower(s[1]) == 'o') {
      base = 8, s.remove_prefix(2);
    } else if (s.size() >= 3 && Lower(s[1]) == 'x') {
      base = 16, s.remove_prefix(2);
    } else {
      base = 8, s.remove_prefix(1);
    }
  }
  bool underscores = false;
  uint64_t n = 0;
  for (char c : s) {
    if (c == '_') {
      underscores = true;
      continue;
    }
    const int d = HexValue(c);
    if (d < 0 || static_cast<unsigned>(d) >= base) return std::nullopt;
    if (n > (std::numeric_limits<uint64_t>::max() - static_cast<unsigned>(d)) / base) {
      return std::nullopt;
    }
    n = n * base + static_cast<unsigned>(d);
  }
  if (underscores && !UnderscoreOk(whole)) return std::nullopt;
  return n;
}

std::optional<double> ParseFloat(std::string_view text) {
  std::string clean;
  bool underscores = false;
  for (char c : text) {
    if (c == '_') {
      underscores = true;
    } else {
      clean.push_back(c);
    }
  }
  if (underscores && !UnderscoreOk(text)) return std::nullopt;
  std::string_view body = clean;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body.empty()) return std::nullopt;
  const bool hex = body.size() >= 2 && body[0] == '0' && Lower(body[1]) == 'x';
  if (body.size() >= 2 && body[0] == '0' && (Lower(body[1]) == 'o' || Lower(body[1]) == 'b')) {
    return std::nullopt;
  }
  if (hex && body.find_first_of("pP") == std::string_view::npos) return std::nullopt;
  for (char c : body) {
    const char l = Lower(c);
    const bool ok = (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' ||
                    (hex ? ((l >= 'a' && l <= 'f') || l == 'x' || l == 'p') : l == 'e');
    if (!ok) return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size() || std::isinf(v)) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::string> UnquoteString(std::string_view quoted) {
  if (quoted.size() < 2) return std::nullopt;
  const char q = quoted.front();
  if (quoted.back() != q) return std::nullopt;
  std::string_view body = quoted.substr(1, quoted.size() - 2);
  std::string out;
  if (q == '`') {
    if (body.find('`') != std::string_view::npos) return std::nullopt;
    for (char c : body) {
      if (c != '\r') out.push_back(c);  // Go drops carriage returns from raw strings
    }
    return out;
  }
  if (q != '"' || body.find('\n') != std::string_view::npos) return std::nullopt;
  size_t i = 0;
  while (i < body.size()) {
    char32_t v = 0;
    if (!UnquoteChar(body, &i, '"', &out, &v)) return std::nullopt;
  }
  return out;
}

std::optional<std::string> ParseNumber(std::string_view text, bool char_constant, Number* number) {
  *number = Number{};
  if (char_constant) {
    if (text.size() < 2) return "invalid syntax";
    size_t i = 1;
    std::string bytes;
    char32_t r = 0;
    if (!UnquoteChar(text, &i, '\'', &bytes, &r)) return "invalid syntax";
    if (text.substr(i) != "'") {
      return "malformed character constant: " + std::string(text);
    }
    number->is_int = number->is_uint = number->is_float = true;
    number->int_value = r;
    number->uint_value = r;
    number->float_value = r;
    return std::nullopt;
  }
  if (!text.empty() && text.back() == 'i') return "complex constants are not supported";
  std::string_view mag = text;
  bool negative = false;
  if (!mag.empty() && (mag[0] == '+' || mag[0] == '-')) {
    negative = mag[0] == '-';
    mag.remove_prefix(1);
  }
  if (const auto u = ParseUnsigned(mag)) {
    if (!negative && text[0] != '+') {
      number->is_uint = true;
      number->uint_value = *u;
    }
    if (!negative && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      number->is_int = true;
      number->int_value = static_cast<int64_t>(*u);
    } else if (negative && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
      number->is_int = true;
      number->int_value = static_cast<int64_t>(0 - *u);
    }
    if (number->is_int && number->int_value == 0) {
      number->is_uint = true;
      number->uint_value = 0;
    }
  }
  if (number->is_int) {
    number->is_float = true;
    number->float_value = static_cast<double>(number->int_value);
  } else if (number->is_uint) {
    number->is_float = true;
    number->float_value = static_cast<double>(number->uint_value);
  } else if (const auto f = ParseFloat(text)) {
    if (text.find_first_of(".eEpP") == std::string_view::npos) {
      return "integer overflow: " + GoQuote(text);
    }
    number->is_float = true;
    number->float_value = *f;
    if (*f >= -9223372036854775808.0 && *f < 9223372036854775808.0 &&
        static_cast<double>(static_cast<int64_t>(*f)) == *f) {
      number->is_int = true;
      number->int_value = static_cast<int64_t>(*f);
    }
    if (*f >= 0 && *f < 18446744073709551616.0 &&
        static_cast<double>(static_cast<uint64_t>(*f)) == *f) {
      number->is_uint = true;
      number->uint_value = static_cast<uint64_t>(*f);
    }
  }
  if (!number->is_int && !number->is_uint && !number->is_float) {
    return "illegal number syntax: " + GoQuote(text);
  }
  const bool hex_int = mag.size() > 2 && mag[0] == '0' && Lower(mag[1]) == 'x' &&
                       mag.find_first_of("pP") == std::string_view::npos;
  number->prints_as_float =
      number->is_float && !hex_int && text.find_first_of(".eEpP") != std::string_view::npos;
  return std::nullopt;
}

bool IsPrintRune(char32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7f;
  if (r < 0xA0 || r == 0xAD) return false;
  if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) || r == 0xFEFF ||
      (r >= 0xFFF9 && r <= 0xFFFB) || (r >= 0xE000 && r <= 0xF8FF)) {
    return false;
  }
  return r <= 0x10FFFF && (r & 0xFFFE) != 0xFFFE;
}

namespace {
void AppendEscapedRune(std::string* out, char32_t r, size_t width, char quote) {
  if (width == 1 && r == 0xFFFD) {  // an invalid byte: Go writes \x..
    return;
  }
  if (r == static_cast<char32_t>(quote) || r == '\\') {
    out->push_back('\\');
    out->push_back(static_cast<char>(r));
    return;
  }
  if (IsPrintRune(r)) {
    AppendRune(out, r);
    return;
  }
  char buf[16];
  switch (r) {
    case '\a':
      *out += "\\a";
      return;
    case '\b':
      *out += "\\b";
      return;
    case '\f':
      *out += "\\f";
      return;
    case '\n':
      *out += "\\n";
      return;
    case '\r':
      *out += "\\r";
      return;
    case '\t':
      *out += "\\t";
      return;
    case '\v':
      *out += "\\v";
      return;
    default:
      break;
  }
  if (r < 0x20 || r == 0x7f) {
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(r));
  } else if (r < 0x10000) {
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(r));
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(r));
  }
  *out += buf;
}
}  // namespace

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t size = 0;
    const char32_t r = DecodeRune(s, i, &size);
    if (r == 0xFFFD && size == 1) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i]));
      out += buf;
    } else {
      AppendEscapedRune(&out, r, size, '"');
    }
    i += size;
  }
  out += '"';
  return out;
}

std::string GoQuoteRune(char32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
  std::string out = "'";
  AppendEscapedRune(&out, r, 0, '\'');
  out += '\'';
  return out;
}

bool CanBackquote(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t size = 0;
    const char32_t r = DecodeRune(s, i, &size);
    if (r == 0xFFFD && size == 1) return false;
    if (r == '`' || r == 0xFEFF) return false;
    if (r < 0x20 && r != '\t') return false;
    if (r == 0x7f) return false;
    i += size;
  }
  return true;
}

}  // namespace strongroom::tmpl
