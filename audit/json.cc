#include "audit/json.h"

#include <algorithm>

#include "audit/encoding.h"

namespace strongroom::audit {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the JSON number at the start of `s`, 0 if there is none.
size_t ScanNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return 0;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < s.size() && IsDigit(s[i])) ++i;
  } else {
    return 0;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !IsDigit(s[i])) return 0;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !IsDigit(s[i])) return 0;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  return i;
}

bool KeyLess(const Json::Member& a, std::string_view key) {
  // std::string_view comparison uses char_traits<char>::compare, which compares as unsigned char.
  return std::string_view(a.first) < key;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

Json Json::Bool(bool b) {
  Json j;
  j.type_ = Type::kBool;
  j.bool_ = b;
  return j;
}

Json Json::String(std::string s) {
  Json j;
  j.type_ = Type::kString;
  j.str_ = std::move(s);
  return j;
}

Json Json::Uint(uint64_t n) {
  Json j;
  j.type_ = Type::kNumber;
  j.str_ = std::to_string(n);
  return j;
}

Result<Json> Json::Number(std::string lexeme) {
  if (lexeme.empty() || ScanNumber(lexeme) != lexeme.size()) {
    return Err("not a JSON number: " + lexeme);
  }
  Json j;
  j.type_ = Type::kNumber;
  j.str_ = std::move(lexeme);
  return j;
}

Json Json::Array(std::vector<Json> items) {
  Json j;
  j.type_ = Type::kArray;
  j.items_ = std::move(items);
  return j;
}

Json Json::Object() {
  Json j;
  j.type_ = Type::kObject;
  return j;
}

const Json* Json::Find(std::string_view key) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), key, KeyLess);
  if (it == members_.end() || it->first != key) return nullptr;
  return &it->second;
}

void Json::Set(std::string key, Json value) {
  auto it = std::lower_bound(members_.begin(), members_.end(), std::string_view(key), KeyLess);
  if (it != members_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    members_.insert(it, Member(std::move(key), std::move(value)));
  }
}

bool Json::Erase(std::string_view key) {
  auto it = std::lower_bound(members_.begin(), members_.end(), key, KeyLess);
  if (it == members_.end() || it->first != key) return false;
  members_.erase(it);
  return true;
}

std::optional<uint64_t> Json::AsUint() const {
  if (type_ != Type::kNumber) return std::nullopt;
  return ParseDecimalU64(str_);
}

// Recursive descent over the input; the first error wins and carries the byte offset.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  Result<Json> ParseDocument() {
    SkipSpace();
    Json value;
    if (!ParseValue(&value, 0)) return Err(error_);
    SkipSpace();
    if (pos_ != s_.size()) return Err(At("unexpected data after the JSON value"));
    return value;
  }

 private:
  std::string At(std::string_view what) const {
    return std::string(what) + " at byte " + std::to_string(pos_);
  }
  bool Fail(std::string_view what) {
    error_ = At(what);
    return false;
  }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(Json* out, int depth) {
    if (pos_ >= s_.size()) return Fail("unexpected end of input");
    const char c = s_[pos_];
    switch (c) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case '"':
        out->type_ = Json::Type::kString;
        return ParseString(&out->str_);
      case 't':
        *out = Json::Bool(true);
        return Literal("true");
      case 'f':
        *out = Json::Bool(false);
        return Literal("false");
      case 'n':
        *out = Json::Null();
        return Literal("null");
      default: {
        const size_t n = ScanNumber(s_.substr(pos_));
        if (n == 0) return Fail("invalid JSON value");
        out->type_ = Json::Type::kNumber;
        out->str_ = std::string(s_.substr(pos_, n));
        pos_ += n;
        return true;
      }
    }
  }

  bool ParseObject(Json* out, int depth) {
    if (depth > kMaxJsonDepth) return Fail("JSON nested too deeply");
    *out = Json::Object();
    ++pos_;  // '{'
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected an object key");
      std::string key;
      if (!ParseString(&key)) return false;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected ':'");
      ++pos_;
      SkipSpace();
      Json value;
      if (!ParseValue(&value, depth)) return false;
      out->members_.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        break;
      }
      return Fail("expected ',' or '}'");
    }
    // Sort, then reject duplicates (an ambiguity a tamperer could use: readers disagree on
    // which of two equal keys counts).
    auto& m = out->members_;
    std::stable_sort(m.begin(), m.end(), [](const Json::Member& a, const Json::Member& b) {
      return a.first < b.first;
    });
    for (size_t i = 1; i < m.size(); ++i) {
      if (m[i - 1].first == m[i].first) {
        error_ = "duplicate object key \"" + m[i].first + "\"";
        return false;
      }
    }
    return true;
  }

  bool ParseArray(Json* out, int depth) {
    if (depth > kMaxJsonDepth) return Fail("JSON nested too deeply");
    *out = Json::Array();
    ++pos_;  // '['
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      Json value;
      if (!ParseValue(&value, depth)) return false;
      out->items_.push_back(std::move(value));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Fail("expected ',' or ']'");
    }
  }

  bool ParseHex4(uint32_t* out) {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_++];
      uint32_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Fail("invalid \\u escape");
      }
      v = (v << 4) | d;
    }
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    ++pos_;  // opening quote
    const size_t start = pos_;
    // Fast path: find the closing quote; copy runs without escapes.
    std::string result;
    size_t run = pos_;
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        result.append(s_.substr(run, pos_ - run));
        ++pos_;
        break;
      }
      if (c < 0x20) return Fail("unescaped control character in string");
      if (c != '\\') {
        ++pos_;
        continue;
      }
      result.append(s_.substr(run, pos_ - run));
      ++pos_;
      if (pos_ >= s_.size()) return Fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          result.push_back('"');
          break;
        case '\\':
          result.push_back('\\');
          break;
        case '/':
          result.push_back('/');
          break;
        case 'b':
          result.push_back('\b');
          break;
        case 'f':
          result.push_back('\f');
          break;
        case 'n':
          result.push_back('\n');
          break;
        case 'r':
          result.push_back('\r');
          break;
        case 't':
          result.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (s_.substr(pos_, 2) != "\\u") return Fail("lone high surrogate escape");
            pos_ += 2;
            if (!ParseHex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return Fail("invalid surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, &result);
          break;
        }
        default:
          --pos_;
          return Fail("invalid escape");
      }
      run = pos_;
    }
    if (!IsValidUtf8(result)) {
      pos_ = start;
      return Fail("string is not valid UTF-8");
    }
    *out = std::move(result);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

Result<Json> ParseJson(std::string_view text) { return JsonParser(text).ParseDocument(); }

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0x0f]);
    }
  }
  out->append(s.substr(run));
  out->push_back('"');
}

void AppendCanonicalJson(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::Type::kNull:
      out->append("null");
      return;
    case Json::Type::kBool:
      out->append(value.bool_value() ? "true" : "false");
      return;
    case Json::Type::kNumber:
      out->append(value.str());
      return;
    case Json::Type::kString:
      AppendJsonString(value.str(), out);
      return;
    case Json::Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const Json& item : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendCanonicalJson(item, out);
      }
      out->push_back(']');
      return;
    }
    case Json::Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.members()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(key, out);
        out->push_back(':');
        AppendCanonicalJson(item, out);
      }
      out->push_back('}');
      return;
    }
  }
}

std::string CanonicalJson(const Json& value) {
  std::string out;
  AppendCanonicalJson(value, &out);
  return out;
}

}  // namespace strongroom::audit
