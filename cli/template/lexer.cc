#include "cli/template/lexer.h"

#include <cstdio>
#include <utility>

#include "cli/template/strings.h"

namespace strongroom::tmpl {
namespace {

constexpr std::string_view kLeftComment = "/*";
constexpr std::string_view kRightComment = "*/";
constexpr size_t kTrimMarkerLen = 2;  // "- " or " -"

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAsciiAlnum(char c) {
  return c == '_' || IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool HasLeftTrimMarker(std::string_view s) { return s.size() >= 2 && s[0] == '-' && IsSpace(s[1]); }
bool HasRightTrimMarker(std::string_view s) {
  return s.size() >= 2 && IsSpace(s[0]) && s[1] == '-';
}
size_t RightTrimLength(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && IsSpace(s[s.size() - 1 - n])) ++n;
  return n;
}
size_t LeftTrimLength(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && IsSpace(s[n])) ++n;
  return n;
}

class Lexer {
 public:
  Lexer(std::string_view input, std::string_view left, std::string_view right)
      : input_(input), left_(left), right_(right) {}

  std::vector<Token> Run() {
    while (LexText()) {
      if (!LexAction()) break;
    }
    return std::move(tokens_);
  }

 private:
  // Line of `pos`; positions are asked for in increasing order, so counting is incremental.
  size_t LineAt(size_t pos) {
    if (pos < line_pos_) {  // not expected; recount from the start
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < pos && line_pos_ < input_.size(); ++line_pos_) {
      if (input_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }
  void Emit(TokenKind kind, size_t start, size_t end) {
    Token t;
    t.kind = kind;
    t.pos = start;
    t.line = LineAt(start);
    t.text = input_.substr(start, end - start);
    tokens_.push_back(std::move(t));
  }
  // Records an error at `pos`; lexing stops.
  bool Error(size_t pos, std::string message) {
    Token t;
    t.kind = TokenKind::kError;
    t.pos = pos;
    t.line = LineAt(pos);
    t.message = std::move(message);
    tokens_.push_back(std::move(t));
    return false;
  }
  char At(size_t pos) const { return pos < input_.size() ? input_[pos] : '\0'; }
  bool Eof(size_t pos) const { return pos >= input_.size(); }

  // Text up to the next left delimiter. False when the input is done.
  bool LexText() {
    const size_t x = Find(input_, left_, pos_);  // linear whatever the delimiter
    if (x == std::string_view::npos) {
      if (pos_ < input_.size()) Emit(TokenKind::kText, pos_, input_.size());
      Emit(TokenKind::kEof, input_.size(), input_.size());
      return false;
    }
    size_t end = x;
    if (HasLeftTrimMarker(input_.substr(x + left_.size()))) {
      end -= RightTrimLength(input_.substr(pos_, x - pos_));
    }
    if (end > pos_) Emit(TokenKind::kText, pos_, end);
    pos_ = x;
    return true;
  }

  // Whether pos is at the right delimiter, and whether a trim marker precedes it.
  std::pair<bool, bool> AtRightDelim(size_t pos) const {
    std::string_view rest = input_.substr(std::min(pos, input_.size()));
    if (HasRightTrimMarker(rest) && rest.substr(kTrimMarkerLen).starts_with(right_)) {
      return {true, true};
    }
    return {rest.starts_with(right_), false};
  }

  // Ends an action or comment at pos (which is AtRightDelim): skips the marker, the delimiter
  // and, with a trim marker, the whitespace after it.
  void SkipRightDelim(size_t pos, bool trim, bool emit) {
    if (trim) pos += kTrimMarkerLen;
    if (emit) Emit(TokenKind::kRightDelim, pos, pos + right_.size());
    pos += right_.size();
    if (trim) pos += LeftTrimLength(input_.substr(pos));
    pos_ = pos;
  }

  // pos_ is at a left delimiter. False on error or end of input.
  bool LexAction() {
    size_t p = pos_ + left_.size();
    const bool trim = HasLeftTrimMarker(input_.substr(p));
    const size_t after = trim ? kTrimMarkerLen : 0;
    if (input_.substr(p + after).starts_with(kLeftComment)) {
      const size_t start = p + after;
      const size_t body = start + kLeftComment.size();
      const size_t x = input_.find(kRightComment, body);
      if (x == std::string_view::npos) return Error(start, "unclosed comment");
      const size_t end = x + kRightComment.size();
      auto [delim, trim_right] = AtRightDelim(end);
      if (!delim) return Error(start, "comment ends before closing delimiter");
      Emit(TokenKind::kComment, start, end);
      SkipRightDelim(end, trim_right, false);
      return true;
    }
    Emit(TokenKind::kLeftDelim, pos_, p);
    pos_ = p + after;
    int paren_depth = 0;
    for (;;) {
      auto [delim, trim_right] = AtRightDelim(pos_);
      if (delim) {
        if (paren_depth > 0) return Error(pos_, "unclosed left paren");
        SkipRightDelim(pos_, trim_right, true);
        return true;
      }
      if (Eof(pos_)) return Error(pos_, "unclosed action");
      const char c = input_[pos_];
      const size_t start = pos_;
      bool ok = true;
      if (IsSpace(c)) {
        LexSpace();
      } else if (c == '=') {
        Emit(TokenKind::kAssign, start, ++pos_);
      } else if (c == ':') {
        if (At(pos_ + 1) != '=') return Error(start, "expected :=");
        pos_ += 2;
        Emit(TokenKind::kDeclare, start, pos_);
      } else if (c == '|') {
        Emit(TokenKind::kPipe, start, ++pos_);
      } else if (c == '"') {
        ok = LexQuote('"', TokenKind::kString, "unterminated quoted string");
      } else if (c == '\'') {
        ok = LexQuote('\'', TokenKind::kCharConstant, "unterminated character constant");
      } else if (c == '`') {
        const size_t x = input_.find('`', pos_ + 1);
        if (x == std::string_view::npos) return Error(start, "unterminated raw quoted string");
        pos_ = x + 1;
        Emit(TokenKind::kRawString, start, pos_);
      } else if (c == '$') {
        ok = LexFieldOrVariable(TokenKind::kVariable);
      } else if (c == '.' && !IsDigit(At(pos_ + 1))) {
        ok = LexFieldOrVariable(TokenKind::kField);
      } else if (c == '.' || c == '+' || c == '-' || IsDigit(c)) {
        ok = LexNumber();
      } else if (IsAsciiAlnum(c) || static_cast<unsigned char>(c) >= 0x80) {
        size_t size = 0;
        const char32_t r = DecodeRune(input_, pos_, &size);
        if (r == 0xFFFD && size == 1) {
          return Error(start, "unrecognized character in action: " + RuneDescription(r));
        }
        ok = LexIdentifier();
      } else if (c == '(') {
        ++paren_depth;
        Emit(TokenKind::kLeftParen, start, ++pos_);
      } else if (c == ')') {
        --paren_depth;
        if (paren_depth < 0) return Error(start, "unexpected right paren U+0029 ')'");
        Emit(TokenKind::kRightParen, start, ++pos_);
      } else if (c >= 0x20 && c < 0x7f) {
        Emit(TokenKind::kChar, start, ++pos_);
      } else {
        return Error(start, "unrecognized character in action: " +
                                RuneDescription(static_cast<unsigned char>(c)));
      }
      if (!ok) return false;
    }
  }

  void LexSpace() {
    const size_t start = pos_;
    while (!Eof(pos_) && IsSpace(input_[pos_])) ++pos_;
    // A space that starts " -}}" belongs to the closing trim marker.
    if (AtRightDelim(pos_ - 1).second) {
      --pos_;
      if (pos_ == start) return;
    }
    Emit(TokenKind::kSpace, start, pos_);
  }

  bool LexQuote(char quote, TokenKind kind, const char* unterminated) {
    const size_t start = pos_++;
    for (;;) {
      if (Eof(pos_) || input_[pos_] == '\n') return Error(start, unterminated);
      const char c = input_[pos_++];
      if (c == '\\') {
        if (Eof(pos_) || input_[pos_] == '\n') return Error(start, unterminated);
        ++pos_;
      } else if (c == quote) {
        break;
      }
    }
    Emit(kind, start, pos_);
    return true;
  }

  bool IsAlnumAt(size_t pos, size_t* size) const {
    *size = 1;
    if (Eof(pos)) return false;
    const char c = input_[pos];
    if (IsAsciiAlnum(c)) return true;
    if (static_cast<unsigned char>(c) < 0x80) return false;
    // Non-ASCII: any valid code point counts as a letter (Go asks unicode.IsLetter/IsDigit;
    // without Unicode tables this accepts a few more characters, never fewer).
    const char32_t r = DecodeRune(input_, pos, size);
    return !(r == 0xFFFD && *size == 1);
  }

  bool AtTerminator(size_t pos) const {
    if (Eof(pos)) return true;
    const char c = input_[pos];
    if (IsSpace(c)) return true;
    switch (c) {
      case '.':
      case ',':
      case '|':
      case ':':
      case ')':
      case '(':
        return true;
      default:
        break;
    }
    return input_.substr(pos).starts_with(right_);
  }

  bool BadCharacter(size_t pos) {
    size_t size = 0;
    const char32_t r = Eof(pos) ? 0 : DecodeRune(input_, pos, &size);
    return Error(pos, "bad character " + RuneDescription(r));
  }

  void AbsorbAlnum() {
    size_t size = 0;
    while (IsAlnumAt(pos_, &size)) pos_ += size;
  }

  bool LexFieldOrVariable(TokenKind kind) {
    const size_t start = pos_++;
    if (AtTerminator(pos_)) {
      Emit(kind == TokenKind::kVariable ? TokenKind::kVariable : TokenKind::kDot, start, pos_);
      return true;
    }
    AbsorbAlnum();
    if (!AtTerminator(pos_)) return BadCharacter(pos_);
    Emit(kind, start, pos_);
    return true;
  }

  bool LexIdentifier() {
    const size_t start = pos_;
    AbsorbAlnum();
    if (!AtTerminator(pos_)) return BadCharacter(pos_);
    const std::string_view word = input_.substr(start, pos_ - start);
    static constexpr std::pair<std::string_view, TokenKind> kKeywords[] = {
        {"block", TokenKind::kBlock},
        {"break", TokenKind::kBreak},
        {"continue", TokenKind::kContinue},
        {"define", TokenKind::kDefine},
        {"else", TokenKind::kElse},
        {"end", TokenKind::kEnd},
        {"if", TokenKind::kIf},
        {"nil", TokenKind::kNil},
        {"range", TokenKind::kRange},
        {"template", TokenKind::kTemplate},
        {"with", TokenKind::kWith},
        {"true", TokenKind::kBool},
        {"false", TokenKind::kBool},
    };
    TokenKind kind = TokenKind::kIdentifier;
    for (const auto& [name, k] : kKeywords) {
      if (word == name) kind = k;
    }
    Emit(kind, start, pos_);
    return true;
  }

  bool Accept(std::string_view valid) {
    if (!Eof(pos_) && valid.find(input_[pos_]) != std::string_view::npos) {
      ++pos_;
      return true;
    }
    return false;
  }
  void AcceptRun(std::string_view valid) {
    while (Accept(valid)) {
    }
  }

  // Go's scanNumber: accepts a superset of number syntax; the parser validates the text.
  bool ScanNumber() {
    Accept("+-");
    std::string_view digits = "0123456789_";
    bool hex = false;
    if (Accept("0")) {
      if (Accept("xX")) {
        digits = "0123456789abcdefABCDEF_";
        hex = true;
      } else if (Accept("oO")) {
        digits = "01234567_";
      } else if (Accept("bB")) {
        digits = "01_";
      }
    }
    AcceptRun(digits);
    if (Accept(".")) AcceptRun(digits);
    if (digits.size() == 11 && Accept("eE")) {
      Accept("+-");
      AcceptRun("0123456789_");
    }
    if (hex && Accept("pP")) {
      Accept("+-");
      AcceptRun("0123456789_");
    }
    Accept("i");
    size_t size = 0;
    if (IsAlnumAt(pos_, &size)) {
      pos_ += size;
      return false;
    }
    return true;
  }

  bool LexNumber() {
    const size_t start = pos_;
    auto bad = [&] {
      std::string msg = "bad number syntax: \"";
      msg.append(input_.substr(start, pos_ - start));
      msg += '"';
      return Error(start, msg);
    };
    if (!ScanNumber()) return bad();
    if (At(pos_) == '+' || At(pos_) == '-') {
      // Go reads 1+2i as one complex constant; anything else glued on is bad syntax.
      if (!ScanNumber() || input_[pos_ - 1] != 'i') return bad();
    }
    Emit(TokenKind::kNumber, start, pos_);
    return true;
  }

  std::string_view input_;
  std::string_view left_;
  std::string_view right_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  size_t line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Lex(std::string_view input, std::string_view left_delim,
                       std::string_view right_delim) {
  return Lexer(input, left_delim, right_delim).Run();
}

char32_t DecodeRune(std::string_view s, size_t i, size_t* size) {
  *size = 1;
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return c;
  size_t n = 0;
  char32_t r = 0;
  char32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, r = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, r = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, r = c & 0x07, min = 0x10000;
  } else {
    return 0xFFFD;
  }
  if (i + n > s.size()) return 0xFFFD;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0xFFFD;
    r = (r << 6) | (b(k) & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return 0xFFFD;
  *size = n;
  return r;
}

void AppendRune(std::string* out, char32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

std::string RuneDescription(char32_t r) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(r));
  std::string out = buf;
  const bool printable = (r >= 0x20 && r < 0x7f) || (r >= 0xA0 && r != 0xFFFD && r != 0xAD);
  if (printable || r == 0xFFFD) {
    out += " '";
    AppendRune(&out, r);
    out += "'";
  }
  return out;
}

std::string TokenString(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEof:
      return "EOF";
    case TokenKind::kError:
      return token.message;
    case TokenKind::kBlock:
    case TokenKind::kBreak:
    case TokenKind::kContinue:
    case TokenKind::kDefine:
    case TokenKind::kElse:
    case TokenKind::kEnd:
    case TokenKind::kIf:
    case TokenKind::kNil:
    case TokenKind::kRange:
    case TokenKind::kTemplate:
    case TokenKind::kWith:
    case TokenKind::kDot:
      return "<" + std::string(token.text) + ">";
    default:
      break;
  }
  // Go's %q (first 10 characters only, then "...").
  std::string_view text = token.text;
  const bool cut = text.size() > 10;
  if (cut) text = text.substr(0, 10);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (cut) out += "...";
  return out;
}

}  // namespace strongroom::tmpl
