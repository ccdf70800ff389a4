// Go's encoding/json output (json.Marshal / json.MarshalIndent with two spaces) for toJSON and
// toJSONPretty: object keys sorted, HTML-sensitive characters escaped, floats as Go writes them.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "cli/template/functions.h"
#include "cli/template/lexer.h"
#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

void EncodeString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          *out += "\\\"";
          break;
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        case '\b':
          *out += "\\b";
          break;
        case '\f':
          *out += "\\f";
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            *out += "\\u00";
            out->push_back(kHex[c >> 4]);
            out->push_back(kHex[c & 15]);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    size_t size = 0;
    const char32_t r = DecodeRune(s, i, &size);
    if (r == 0xFFFD && size == 1) {
      *out += "\\ufffd";
    } else if (r == 0x2028 || r == 0x2029) {
      *out += r == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out->append(s.substr(i, size));
    }
    i += size;
  }
  out->push_back('"');
}

bool EncodeFloat(std::string* out, double f) {
  if (std::isnan(f) || std::isinf(f)) return false;
  const double a = std::fabs(f);
  char buf[64];
  const bool exp = a != 0 && (a < 1e-6 || a >= 1e21);
  auto res = std::to_chars(buf, buf + sizeof buf, f,
                           exp ? std::chars_format::scientific : std::chars_format::fixed);
  std::string s(buf, static_cast<size_t>(res.ptr - buf));
  if (exp) {  // Go writes e-7, not e-07
    const size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') s.erase(n - 2, 1);
  }
  *out += s;
  return true;
}

class Encoder {
 public:
  Encoder(bool pretty, size_t max_bytes) : pretty_(pretty), max_(max_bytes) {}

  bool Encode(const json::value& v, int depth) {
    if (depth > kMaxValueDepth) return Fail("value nested too deeply to encode");
    if (out_.size() > max_) return Fail(StrCat("result exceeds ", max_, " bytes"));
    switch (v.kind()) {
      case json::kind::null:
        out_ += "null";
        return true;
      case json::kind::bool_:
        out_ += v.get_bool() ? "true" : "false";
        return true;
      case json::kind::int64:
        StrAppend(&out_, v.get_int64());
        return true;
      case json::kind::uint64:
        StrAppend(&out_, v.get_uint64());
        return true;
      case json::kind::double_:
        if (!EncodeFloat(&out_, v.get_double())) {
          return Fail("json: unsupported value: NaN or infinity");
        }
        return true;
      case json::kind::string:
        EncodeString(&out_, v.get_string());
        return true;
      case json::kind::array: {
        const json::array& a = v.get_array();
        if (a.empty()) {
          out_ += "[]";
          return true;
        }
        out_ += '[';
        for (size_t i = 0; i < a.size(); ++i) {
          if (i > 0) out_ += ',';
          NewLine(depth + 1);
          if (!Encode(a[i], depth + 1)) return false;
        }
        NewLine(depth);
        out_ += ']';
        return true;
      }
      case json::kind::object: {
        if (v.get_object().empty()) {
          out_ += "{}";
          return true;
        }
        out_ += '{';
        bool first = true;
        for (const json::key_value_pair* kv : SortedEntries(v.get_object())) {
          if (!first) out_ += ',';
          first = false;
          NewLine(depth + 1);
          EncodeString(&out_, kv->key());
          out_ += pretty_ ? ": " : ":";
          if (!Encode(kv->value(), depth + 1)) return false;
        }
        NewLine(depth);
        out_ += '}';
        return true;
      }
    }
    return true;
  }

  std::string& out() { return out_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  void NewLine(int depth) {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(depth) * 2, ' ');
  }

  bool pretty_;
  size_t max_;
  std::string out_;
  std::string error_;
};

}  // namespace

absl::StatusOr<std::string> EncodeJson(const json::value& v, bool pretty, size_t max_bytes) {
  Encoder e(pretty, max_bytes);
  if (!e.Encode(v, 0)) return CallError(e.error());
  if (e.out().size() > max_bytes) return CallError(StrCat("result exceeds ", max_bytes, " bytes"));
  return std::move(e.out());
}

}  // namespace strongroom::tmpl
