// Lexer and recursive-descent parsers for the HCL subset and the JSON form described in hcl.h.
//
// One lexer serves both syntaxes (JSON mode switches off comments and heredocs), so string,
// number and UTF-8 handling are identical in both and are tested once. The HCL parser builds
// the Body directly; the JSON parser first builds a small tree that remembers key positions,
// because deciding whether an object is a block or an attribute needs to see all of it.
#include "base/hcl.h"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace strongroom::hcl {
namespace {

// Blocks, lists and objects open at once. Bounds recursion in the parser and in Value's
// destructor, so hostile input cannot exhaust the stack.
constexpr int kMaxDepth = 64;
// Real configs and policies are kilobytes. Parsed values take ~50 times the bytes of their
// source (`[1,1,1,...]`), and policies arrive over HTTP, so the cap bounds a parse to tens of
// MiB; it also keeps line/column counters far from int overflow.
constexpr size_t kMaxDocumentBytes = size_t{1} << 20;
// Value::number is a double; larger integers would be silently rounded (a size, a port).
constexpr int64_t kMaxExactInteger = (int64_t{1} << 53) - 1;
// Names quoted in error messages are cut so one message cannot flood a log line.
constexpr size_t kMaxQuotedName = 40;

// Debian's Abseil is built with its own absl::string_view, which StrCat wants.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status ErrorAt(Position pos, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(Where(pos), ": ", AbslView(message)));
}

bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(unsigned char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsNameStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(unsigned char c) { return IsNameStart(c) || IsDigit(c) || c == '-' || c == '.'; }
bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

uint32_t HexValue(unsigned char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return static_cast<uint32_t>(c - 'a' + 10);
  return static_cast<uint32_t>(c - 'A' + 10);
}

// Decodes the UTF-8 sequence starting at text[i]. Returns its length in bytes, or 0 when it is
// malformed in any RFC 3629 sense: truncated, bad continuation byte, overlong encoding, a UTF-16
// surrogate, or beyond U+10FFFF. Overlong forms matter: they are the classic way to smuggle a
// '/' or '"' past a check that looks at bytes.
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t* code_point) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) {
    *code_point = b0;
    return 1;
  }
  size_t len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0Fu, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (text.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return len;
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

// Quotes a name or key for an error message: printable ASCII and valid UTF-8 as is, anything
// else escaped, cut at kMaxQuotedName characters. The input is already valid UTF-8.
std::string QuoteName(std::string_view name) {
  std::string out = "\"";
  size_t chars = 0;
  for (size_t i = 0; i < name.size();) {
    if (chars++ == kMaxQuotedName) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(name[i]);
    uint32_t cp = 0;
    const size_t len = c < 0x80 ? 1 : DecodeUtf8(name, i, &cp);
    if (len == 0) {  // cannot happen for lexed text; stay safe for any caller
      absl::StrAppendFormat(&out, "\\x%02x", c);
      ++i;
    } else if (len > 1) {
      out.append(name.data() + i, len);
      i += len;
    } else {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (IsControl(c)) {
        absl::StrAppendFormat(&out, "\\x%02x", c);
      } else {
        out.push_back(static_cast<char>(c));
      }
      ++i;
    }
  }
  out += "\"";
  return out;
}

enum class TokenKind {
  kEnd,
  kName,
  kString,
  kNumber,
  kLBrace,
  kRBrace,
  kLBracket,
  kRBracket,
  kEquals,
  kColon,
  kComma,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  Position pos;
  std::string text;  // name, decoded string, or number literal
  double number = 0;
};

// Names a key in an error. A quoted key is not echoed: a stray string value (a PIN, a token)
// in key position is read as a key, and must not end up in a log through the error message.
std::string KeyForMessage(const Token& token, std::string_view what) {
  if (token.kind == TokenKind::kName) {
    return absl::StrCat(AbslView(what), " ", QuoteName(token.text));
  }
  return absl::StrCat("a quoted ", AbslView(what));
}

// "found ..." part of an error. Strings are never quoted: they may hold secrets.
std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd:
      return "end of input";
    case TokenKind::kName:
      return absl::StrCat("name ", QuoteName(token.text));
    case TokenKind::kString:
      return "string";
    case TokenKind::kNumber:
      return "number";
    case TokenKind::kLBrace:
      return "'{'";
    case TokenKind::kRBrace:
      return "'}'";
    case TokenKind::kLBracket:
      return "'['";
    case TokenKind::kRBracket:
      return "']'";
    case TokenKind::kEquals:
      return "'='";
    case TokenKind::kColon:
      return "':'";
    case TokenKind::kComma:
      return "','";
  }
  return "token";
}

class Lexer {
 public:
  Lexer(std::string_view text, bool json) : text_(text), json_(json) {}

  // Reads the next token into *token, skipping blanks and (HCL only) comments.
  absl::Status Next(Token* token);

 private:
  bool AtEnd() const { return i_ >= text_.size(); }
  // Byte at i_ + ahead; '\0' past the end (callers check AtEnd() before trusting a '\0').
  unsigned char Peek(size_t ahead = 0) const {
    return i_ + ahead < text_.size() ? static_cast<unsigned char>(text_[i_ + ahead]) : '\0';
  }
  Position Here() const { return Position{line_, column_}; }
  // Consumes one ASCII byte other than '\n'.
  void Bump() {
    ++i_;
    ++column_;
  }
  void BumpNewline() {
    ++i_;
    ++line_;
    column_ = 1;
  }
  // Consumes one multi-byte character: one column.
  void BumpCharacter(size_t bytes) {
    i_ += bytes;
    ++column_;
  }

  // What is at i_, for "found ..." in lexical errors.
  std::string DescribeHere() const;

  absl::Status SkipBlanksAndComments();
  absl::Status SkipLineComment();
  absl::Status SkipBlockComment();
  // Consumes one character of free text (comment, heredoc or quoted string) that is not '\n',
  // appending it to *out when out is not null.
  absl::Status ConsumeTextCharacter(std::string_view where, bool allow_tab, std::string* out);
  absl::Status ScanString(Token* token);
  absl::Status ScanEscape(std::string* out);
  absl::Status ScanHex4(uint32_t* value);
  absl::Status ScanHeredoc(Token* token);
  absl::Status ScanNumber(Token* token);

  std::string_view text_;
  bool json_;
  size_t i_ = 0;
  int line_ = 1;
  int column_ = 1;
};

std::string Lexer::DescribeHere() const {
  if (AtEnd()) return "end of input";
  const unsigned char c = Peek();
  if (c == '\n') return "end of line";
  if (IsControl(c)) return absl::StrFormat("control character U+%04X", c);
  if (c < 0x80) return absl::StrFormat("character '%c'", c);
  uint32_t cp = 0;
  if (DecodeUtf8(text_, i_, &cp) == 0) return absl::StrFormat("invalid UTF-8 byte 0x%02x", c);
  return absl::StrFormat("character U+%04X", cp);
}

absl::Status Lexer::Next(Token* token) {
  RETURN_IF_ERROR(SkipBlanksAndComments());
  token->pos = Here();
  token->text.clear();
  token->number = 0;
  if (AtEnd()) {
    token->kind = TokenKind::kEnd;
    return absl::OkStatus();
  }
  const unsigned char c = Peek();
  auto punct = [&](TokenKind kind) {
    token->kind = kind;
    Bump();
    return absl::OkStatus();
  };
  switch (c) {
    case '{':
      return punct(TokenKind::kLBrace);
    case '}':
      return punct(TokenKind::kRBrace);
    case '[':
      return punct(TokenKind::kLBracket);
    case ']':
      return punct(TokenKind::kRBracket);
    case '=':
      return punct(TokenKind::kEquals);
    case ':':
      return punct(TokenKind::kColon);
    case ',':
      return punct(TokenKind::kComma);
    case '"':
      return ScanString(token);
    default:
      break;
  }
  if (!json_ && c == '<' && Peek(1) == '<') return ScanHeredoc(token);
  if (c == '-' || IsDigit(c)) return ScanNumber(token);
  if (IsNameStart(c)) {
    const size_t begin = i_;
    while (!AtEnd() && IsNameChar(Peek())) Bump();
    token->kind = TokenKind::kName;
    token->text.assign(text_.substr(begin, i_ - begin));
    return absl::OkStatus();
  }
  return ErrorAt(Here(), absl::StrCat(json_ ? "expected a JSON value or punctuation, found "
                                            : "expected a name, string, number or punctuation, "
                                              "found ",
                                      DescribeHere()));
}

absl::Status Lexer::SkipBlanksAndComments() {
  while (!AtEnd()) {
    const unsigned char c = Peek();
    if (c == ' ' || c == '\t' || c == '\r') {
      Bump();
    } else if (c == '\n') {
      BumpNewline();
    } else if (!json_ && c == '#') {
      RETURN_IF_ERROR(SkipLineComment());
    } else if (!json_ && c == '/' && Peek(1) == '/') {
      RETURN_IF_ERROR(SkipLineComment());
    } else if (!json_ && c == '/' && Peek(1) == '*') {
      RETURN_IF_ERROR(SkipBlockComment());
    } else {
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status Lexer::SkipLineComment() {
  while (!AtEnd() && Peek() != '\n') {
    if (Peek() == '\r' && Peek(1) == '\n') {  // CRLF line ending
      Bump();
      continue;
    }
    RETURN_IF_ERROR(ConsumeTextCharacter("comment", /*allow_tab=*/true, nullptr));
  }
  return absl::OkStatus();
}

absl::Status Lexer::SkipBlockComment() {
  const Position start = Here();
  Bump();  // '/'
  Bump();  // '*'
  while (true) {
    if (AtEnd()) {
      return ErrorAt(start,
                     "unterminated comment: expected \"*/\" to close it, found end of input");
    }
    const unsigned char c = Peek();
    if (c == '*' && Peek(1) == '/') {
      Bump();
      Bump();
      return absl::OkStatus();
    }
    if (c == '\n') {
      BumpNewline();
    } else if (c == '\r' && Peek(1) == '\n') {
      Bump();
    } else {
      RETURN_IF_ERROR(ConsumeTextCharacter("comment", /*allow_tab=*/true, nullptr));
    }
  }
}

absl::Status Lexer::ConsumeTextCharacter(std::string_view where, bool allow_tab, std::string* out) {
  const unsigned char c = Peek();
  if (c >= 0x80) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(text_, i_, &cp);
    if (len == 0) {
      return ErrorAt(Here(),
                     absl::StrFormat("expected valid UTF-8 in %s, found byte 0x%02x", where, c));
    }
    if (out != nullptr) out->append(text_.substr(i_, len));
    BumpCharacter(len);
    return absl::OkStatus();
  }
  if (IsControl(c) && !(allow_tab && c == '\t')) {
    return ErrorAt(Here(), absl::StrFormat("expected a printable character in %s%s, found "
                                           "control character U+%04X",
                                           where, allow_tab ? "" : " (use an escape sequence)", c));
  }
  if (out != nullptr) out->push_back(static_cast<char>(c));
  Bump();
  return absl::OkStatus();
}

absl::Status Lexer::ScanString(Token* token) {
  const Position start = Here();
  token->kind = TokenKind::kString;
  Bump();  // opening quote
  while (true) {
    // An unterminated string is reported where it starts: that is the line to fix, and the
    // end of input may be hundreds of lines away.
    if (AtEnd()) {
      return ErrorAt(start, "unterminated string: expected a closing '\"', found end of input");
    }
    const unsigned char c = Peek();
    if (c == '"') {
      Bump();
      return absl::OkStatus();
    }
    if (c == '\n' || (c == '\r' && Peek(1) == '\n')) {
      return ErrorAt(start, "unterminated string: expected a closing '\"', found end of line");
    }
    if (c == '\\') {
      RETURN_IF_ERROR(ScanEscape(&token->text));
    } else {
      RETURN_IF_ERROR(ConsumeTextCharacter("string", /*allow_tab=*/false, &token->text));
    }
  }
}

absl::Status Lexer::ScanEscape(std::string* out) {
  const Position escape = Here();
  Bump();  // backslash
  const unsigned char c = AtEnd() ? '\0' : Peek();
  char simple = 0;
  switch (c) {
    case '"':
      simple = '"';
      break;
    case '\\':
      simple = '\\';
      break;
    case '/':
      simple = '/';
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
    case 'u':
      break;
    default:
      return ErrorAt(escape, absl::StrCat("invalid escape: expected one of \\\" \\\\ \\/ \\b \\f "
                                          "\\n \\r \\t \\uXXXX, found '\\' followed by ",
                                          DescribeHere()));
  }
  if (simple != 0) {
    out->push_back(simple);
    Bump();
    return absl::OkStatus();
  }
  Bump();  // 'u'
  uint32_t cp = 0;
  RETURN_IF_ERROR(ScanHex4(&cp));
  if (cp >= 0xDC00 && cp <= 0xDFFF) {
    return ErrorAt(escape, absl::StrFormat("invalid escape: expected a character or a high "
                                           "surrogate, found lone low surrogate \\u%04X",
                                           cp));
  }
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    // UTF-16 pair, as JSON encoders write characters above U+FFFF.
    const Position second = Here();
    if (Peek() != '\\' || Peek(1) != 'u') {
      return ErrorAt(second, absl::StrFormat("invalid escape: expected a low surrogate \\uDC00-"
                                             "\\uDFFF after \\u%04X, found %s",
                                             cp, DescribeHere()));
    }
    Bump();
    Bump();
    uint32_t low = 0;
    RETURN_IF_ERROR(ScanHex4(&low));
    if (low < 0xDC00 || low > 0xDFFF) {
      return ErrorAt(second, absl::StrFormat("invalid escape: expected a low surrogate \\uDC00-"
                                             "\\uDFFF after \\u%04X, found \\u%04X",
                                             cp, low));
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  if (cp == 0) {
    return ErrorAt(escape, "invalid escape: expected a character other than NUL, found \\u0000");
  }
  AppendUtf8(cp, out);
  return absl::OkStatus();
}

absl::Status Lexer::ScanHex4(uint32_t* value) {
  *value = 0;
  for (int k = 0; k < 4; ++k) {
    if (AtEnd() || !IsHexDigit(Peek())) {
      return ErrorAt(Here(), absl::StrCat("invalid escape: expected 4 hex digits after \\u, found ",
                                          DescribeHere()));
    }
    *value = (*value << 4) | HexValue(Peek());
    Bump();
  }
  return absl::OkStatus();
}

absl::Status Lexer::ScanHeredoc(Token* token) {
  const Position start = Here();
  token->kind = TokenKind::kString;
  Bump();  // '<'
  Bump();  // '<'
  bool indented = false;
  if (Peek() == '-') {
    indented = true;
    Bump();
  }
  const size_t anchor_begin = i_;
  if (AtEnd() || !IsNameStart(Peek())) {
    return ErrorAt(
        Here(), absl::StrCat("expected a heredoc anchor name after '<<', found ", DescribeHere()));
  }
  while (!AtEnd() && (IsNameStart(Peek()) || IsDigit(Peek()))) Bump();
  const std::string_view anchor = text_.substr(anchor_begin, i_ - anchor_begin);
  if (Peek() == '\r' && Peek(1) == '\n') Bump();
  if (AtEnd() || Peek() != '\n') {
    return ErrorAt(Here(), absl::StrCat("expected end of line after heredoc anchor ",
                                        QuoteName(anchor), ", found ", DescribeHere()));
  }
  BumpNewline();

  std::vector<std::string> lines;
  while (true) {
    if (AtEnd()) {
      return ErrorAt(start, absl::StrCat("unterminated heredoc: expected a line containing only ",
                                         QuoteName(anchor), ", found end of input"));
    }
    std::string line;
    while (!AtEnd() && Peek() != '\n') {
      if (Peek() == '\r' && Peek(1) == '\n') {  // CRLF becomes LF
        Bump();
        continue;
      }
      RETURN_IF_ERROR(ConsumeTextCharacter("heredoc", /*allow_tab=*/true, &line));
    }
    std::string_view candidate = line;
    if (indented) {
      const size_t first = candidate.find_first_not_of(" \t");
      candidate.remove_prefix(first == std::string_view::npos ? candidate.size() : first);
    }
    if (candidate == anchor) break;  // the newline after the terminator is an ordinary blank
    lines.push_back(std::move(line));
    if (!AtEnd()) BumpNewline();
  }

  size_t strip = 0;
  if (indented) {
    // Remove the indentation common to all non-blank lines, so a heredoc can be indented with
    // the surrounding block without the indentation becoming part of the value.
    strip = std::string::npos;
    for (const std::string& line : lines) {
      const size_t first = line.find_first_not_of(" \t");
      if (first != std::string::npos && first < strip) strip = first;
    }
    if (strip == std::string::npos) strip = 0;
  }
  for (const std::string& line : lines) {
    const size_t first = line.find_first_not_of(" \t");
    const size_t blank = first == std::string::npos ? line.size() : first;
    token->text.append(line, blank < strip ? blank : strip);
    token->text.push_back('\n');
  }
  return absl::OkStatus();
}

absl::Status Lexer::ScanNumber(Token* token) {
  const Position start = Here();
  const size_t begin = i_;
  bool integer = true;
  token->kind = TokenKind::kNumber;
  if (Peek() == '-') Bump();
  if (AtEnd() || !IsDigit(Peek())) {
    return ErrorAt(Here(), absl::StrCat("expected a digit after '-', found ", DescribeHere()));
  }
  if (Peek() == '0') {
    Bump();
    if (!AtEnd() && IsDigit(Peek())) {
      return ErrorAt(start,
                     "expected a number without leading zeros (quote it if it is a "
                     "string), found '0' followed by a digit");
    }
  } else {
    while (!AtEnd() && IsDigit(Peek())) Bump();
  }
  if (!AtEnd() && Peek() == '.') {
    integer = false;
    Bump();
    if (AtEnd() || !IsDigit(Peek())) {
      return ErrorAt(Here(),
                     absl::StrCat("expected a digit after '.' in number, found ", DescribeHere()));
    }
    while (!AtEnd() && IsDigit(Peek())) Bump();
  }
  if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
    integer = false;
    Bump();
    if (!AtEnd() && (Peek() == '+' || Peek() == '-')) Bump();
    if (AtEnd() || !IsDigit(Peek())) {
      return ErrorAt(Here(), absl::StrCat("expected a digit in the exponent of number, found ",
                                          DescribeHere()));
    }
    while (!AtEnd() && IsDigit(Peek())) Bump();
  }
  // "10h" or "1.2.3" are not numbers; say so here rather than as a confusing second token.
  if (!AtEnd() && IsNameChar(Peek())) {
    return ErrorAt(Here(), absl::StrCat("expected a delimiter after number (quote durations and "
                                        "versions as strings), found ",
                                        DescribeHere()));
  }
  token->text.assign(text_.substr(begin, i_ - begin));
  const char* first = text_.data() + begin;
  const char* last = text_.data() + i_;
  if (integer) {
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || ptr != last || value > kMaxExactInteger || value < -kMaxExactInteger) {
      return ErrorAt(start,
                     "number out of range: expected an integer between -9007199254740991 "
                     "and 9007199254740991, found one outside it");
    }
    token->number = static_cast<double>(value);
  } else {
    double value = 0;
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || ptr != last || !std::isfinite(value)) {
      return ErrorAt(start,
                     "number out of range: expected a finite double-precision value, "
                     "found one outside that range");
    }
    token->number = value;
  }
  return absl::OkStatus();
}

// Shared by both parsers: a one-token lookahead over the lexer.
class TokenStream {
 public:
  TokenStream(std::string_view text, bool json) : lexer_(text, json) {}
  absl::Status Advance() { return lexer_.Next(&token_); }
  Token& token() { return token_; }
  TokenKind kind() const { return token_.kind; }

 private:
  Lexer lexer_;
  Token token_;
};

absl::Status TooDeep(Position pos) {
  return ErrorAt(pos, absl::StrFormat("nesting too deep: expected at most %d nested blocks, "
                                      "lists and objects, found more",
                                      kMaxDepth));
}

class HclParser {
 public:
  explicit HclParser(std::string_view text) : tokens_(text, /*json=*/false) {}

  absl::StatusOr<Body> ParseDocument() {
    RETURN_IF_ERROR(tokens_.Advance());
    Body body;
    RETURN_IF_ERROR(ParseBody(&body.attributes, &body.blocks, nullptr, 0));
    return body;
  }

 private:
  // Parses items until '}' (left unconsumed) or, at top level (open == nullptr), end of input.
  absl::Status ParseBody(std::vector<Attribute>* attributes, std::vector<Block>* blocks,
                         const Position* open, int depth);
  absl::Status ParseValue(Value* out, int depth);
  absl::Status ParseList(Value* out, int depth);
  absl::Status ParseObject(Value* out, int depth);

  // Names and quoted strings are interchangeable as keys, block types and labels.
  bool AtKey() const {
    return tokens_.kind() == TokenKind::kName || tokens_.kind() == TokenKind::kString;
  }

  TokenStream tokens_;
};

absl::Status HclParser::ParseBody(std::vector<Attribute>* attributes, std::vector<Block>* blocks,
                                  const Position* open, int depth) {
  while (true) {
    Token& tok = tokens_.token();
    if (tok.kind == TokenKind::kEnd) {
      if (open == nullptr) return absl::OkStatus();
      return ErrorAt(tok.pos, absl::StrCat("expected '}' to close the block opened at ",
                                           Where(*open), ", found end of input"));
    }
    if (tok.kind == TokenKind::kRBrace && open != nullptr) return absl::OkStatus();
    if (!AtKey()) {
      return ErrorAt(tok.pos,
                     absl::StrCat(open == nullptr ? "expected an attribute or block name, found "
                                                  : "expected an attribute or block name or '}', "
                                                    "found ",
                                  Describe(tok)));
    }
    const std::string key_for_message = KeyForMessage(tok, "key");
    std::string key = std::move(tok.text);
    const Position key_pos = tok.pos;
    RETURN_IF_ERROR(tokens_.Advance());

    if (tokens_.kind() == TokenKind::kEquals) {
      RETURN_IF_ERROR(tokens_.Advance());
      Attribute attribute{std::move(key), key_pos, Value{}};
      RETURN_IF_ERROR(ParseValue(&attribute.value, depth));
      attributes->push_back(std::move(attribute));
    } else if (AtKey() || tokens_.kind() == TokenKind::kLBrace) {
      Block block;
      block.type = std::move(key);
      block.pos = key_pos;
      while (AtKey()) {
        block.labels.push_back(std::move(tokens_.token().text));
        RETURN_IF_ERROR(tokens_.Advance());
      }
      if (tokens_.kind() != TokenKind::kLBrace) {
        return ErrorAt(tokens_.token().pos,
                       absl::StrCat("expected '{' or another label after the block labels, "
                                    "found ",
                                    Describe(tokens_.token())));
      }
      const Position brace = tokens_.token().pos;
      if (depth + 1 > kMaxDepth) return TooDeep(brace);
      RETURN_IF_ERROR(tokens_.Advance());
      RETURN_IF_ERROR(ParseBody(&block.attributes, &block.blocks, &brace, depth + 1));
      RETURN_IF_ERROR(tokens_.Advance());  // '}'
      blocks->push_back(std::move(block));
    } else {
      return ErrorAt(tokens_.token().pos,
                     absl::StrCat("expected '=', a block label or '{' after ", key_for_message,
                                  ", found ", Describe(tokens_.token())));
    }
    if (tokens_.kind() == TokenKind::kComma) RETURN_IF_ERROR(tokens_.Advance());
  }
}

absl::Status HclParser::ParseValue(Value* out, int depth) {
  Token& tok = tokens_.token();
  out->pos = tok.pos;
  switch (tok.kind) {
    case TokenKind::kString:
      out->kind = Value::Kind::kString;
      out->str = std::move(tok.text);
      return tokens_.Advance();
    case TokenKind::kNumber:
      out->kind = Value::Kind::kNumber;
      out->str = std::move(tok.text);
      out->number = tok.number;
      return tokens_.Advance();
    case TokenKind::kName:
      if (tok.text == "true" || tok.text == "false") {
        out->kind = Value::Kind::kBool;
        out->boolean = tok.text == "true";
        return tokens_.Advance();
      }
      break;
    case TokenKind::kLBracket:
      if (depth + 1 > kMaxDepth) return TooDeep(tok.pos);
      return ParseList(out, depth + 1);
    case TokenKind::kLBrace:
      if (depth + 1 > kMaxDepth) return TooDeep(tok.pos);
      return ParseObject(out, depth + 1);
    default:
      break;
  }
  return ErrorAt(tok.pos, absl::StrCat("expected a value (string, number, bool, list or object), "
                                       "found ",
                                       Describe(tok)));
}

absl::Status HclParser::ParseList(Value* out, int depth) {
  out->kind = Value::Kind::kList;
  RETURN_IF_ERROR(tokens_.Advance());  // '['
  while (true) {
    if (tokens_.kind() == TokenKind::kRBracket) return tokens_.Advance();
    Value item;
    RETURN_IF_ERROR(ParseValue(&item, depth));
    out->list.push_back(std::move(item));
    if (tokens_.kind() == TokenKind::kComma) {
      RETURN_IF_ERROR(tokens_.Advance());
    } else if (tokens_.kind() != TokenKind::kRBracket) {
      return ErrorAt(tokens_.token().pos,
                     absl::StrCat("expected ',' or ']' after list element, found ",
                                  Describe(tokens_.token())));
    }
  }
}

absl::Status HclParser::ParseObject(Value* out, int depth) {
  out->kind = Value::Kind::kObject;
  RETURN_IF_ERROR(tokens_.Advance());  // '{'
  while (true) {
    if (tokens_.kind() == TokenKind::kRBrace) return tokens_.Advance();
    if (!AtKey()) {
      return ErrorAt(tokens_.token().pos, absl::StrCat("expected an object key or '}', found ",
                                                       Describe(tokens_.token())));
    }
    const std::string key_for_message = KeyForMessage(tokens_.token(), "object key");
    std::string key = std::move(tokens_.token().text);
    RETURN_IF_ERROR(tokens_.Advance());
    if (tokens_.kind() != TokenKind::kEquals && tokens_.kind() != TokenKind::kColon) {
      return ErrorAt(tokens_.token().pos,
                     absl::StrCat("expected '=' or ':' after ", key_for_message, ", found ",
                                  Describe(tokens_.token())));
    }
    RETURN_IF_ERROR(tokens_.Advance());
    Value value;
    RETURN_IF_ERROR(ParseValue(&value, depth));
    out->object.emplace_back(std::move(key), std::move(value));
    if (tokens_.kind() == TokenKind::kComma) RETURN_IF_ERROR(tokens_.Advance());
  }
}

// A parsed JSON value that, unlike Value, remembers where each object key was, so that the
// attributes and blocks mapped from it carry the key's position.
struct JsonMember;
struct JsonNode {
  Value::Kind kind = Value::Kind::kString;
  Position pos;
  std::string str;
  double number = 0;
  bool boolean = false;
  std::vector<JsonNode> items;
  std::vector<JsonMember> members;
};
struct JsonMember {
  std::string key;
  Position key_pos;
  JsonNode node;
};

Value ToValue(JsonNode&& node) {
  Value value;
  value.kind = node.kind;
  value.pos = node.pos;
  value.str = std::move(node.str);
  value.number = node.number;
  value.boolean = node.boolean;
  value.list.reserve(node.items.size());
  for (JsonNode& item : node.items) value.list.push_back(ToValue(std::move(item)));
  value.object.reserve(node.members.size());
  for (JsonMember& member : node.members) {
    value.object.emplace_back(std::move(member.key), ToValue(std::move(member.node)));
  }
  return value;
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : tokens_(text, /*json=*/true) {}

  absl::StatusOr<Body> ParseDocument() {
    RETURN_IF_ERROR(tokens_.Advance());
    JsonNode root;
    RETURN_IF_ERROR(ParseValue(&root, 0));
    if (tokens_.kind() != TokenKind::kEnd) {
      return ErrorAt(tokens_.token().pos,
                     absl::StrCat("expected end of input after the JSON document, found ",
                                  Describe(tokens_.token())));
    }
    // Parse() only picks JSON when the first character is '{', so root is an object.
    Body body;
    for (JsonMember& member : root.members) MapTopLevelMember(std::move(member), &body);
    return body;
  }

 private:
  absl::Status ParseValue(JsonNode* out, int depth);
  static bool IsBlockLabelSet(const JsonNode& node);
  static void AppendBlocks(const std::string& type, Position type_pos, JsonNode&& object,
                           Body* body);
  static void MapTopLevelMember(JsonMember&& member, Body* body);

  TokenStream tokens_;
};

absl::Status JsonParser::ParseValue(JsonNode* out, int depth) {
  Token& tok = tokens_.token();
  out->pos = tok.pos;
  switch (tok.kind) {
    case TokenKind::kString:
      out->kind = Value::Kind::kString;
      out->str = std::move(tok.text);
      return tokens_.Advance();
    case TokenKind::kNumber:
      out->kind = Value::Kind::kNumber;
      out->str = std::move(tok.text);
      out->number = tok.number;
      return tokens_.Advance();
    case TokenKind::kName:
      if (tok.text == "true" || tok.text == "false") {
        out->kind = Value::Kind::kBool;
        out->boolean = tok.text == "true";
        return tokens_.Advance();
      }
      if (tok.text == "null") {
        // Neither HCL nor our model has a null; failing beats guessing what it should mean.
        return ErrorAt(tok.pos, "expected a string, number, bool, array or object, found null");
      }
      break;
    case TokenKind::kLBracket: {
      if (depth + 1 > kMaxDepth) return TooDeep(tok.pos);
      out->kind = Value::Kind::kList;
      RETURN_IF_ERROR(tokens_.Advance());
      if (tokens_.kind() == TokenKind::kRBracket) return tokens_.Advance();
      while (true) {
        JsonNode item;
        RETURN_IF_ERROR(ParseValue(&item, depth + 1));
        out->items.push_back(std::move(item));
        if (tokens_.kind() == TokenKind::kRBracket) return tokens_.Advance();
        if (tokens_.kind() != TokenKind::kComma) {
          return ErrorAt(tokens_.token().pos,
                         absl::StrCat("expected ',' or ']' after JSON array element, found ",
                                      Describe(tokens_.token())));
        }
        RETURN_IF_ERROR(tokens_.Advance());
      }
    }
    case TokenKind::kLBrace: {
      if (depth + 1 > kMaxDepth) return TooDeep(tok.pos);
      out->kind = Value::Kind::kObject;
      RETURN_IF_ERROR(tokens_.Advance());
      if (tokens_.kind() == TokenKind::kRBrace) return tokens_.Advance();
      while (true) {
        if (tokens_.kind() != TokenKind::kString) {
          return ErrorAt(tokens_.token().pos,
                         absl::StrCat("expected a string key in JSON object, found ",
                                      Describe(tokens_.token())));
        }
        JsonMember member;
        member.key = std::move(tokens_.token().text);
        member.key_pos = tokens_.token().pos;
        RETURN_IF_ERROR(tokens_.Advance());
        if (tokens_.kind() != TokenKind::kColon) {
          return ErrorAt(tokens_.token().pos,
                         absl::StrCat("expected ':' after JSON object key, found ",
                                      Describe(tokens_.token())));
        }
        RETURN_IF_ERROR(tokens_.Advance());
        RETURN_IF_ERROR(ParseValue(&member.node, depth + 1));
        out->members.push_back(std::move(member));
        if (tokens_.kind() == TokenKind::kRBrace) return tokens_.Advance();
        if (tokens_.kind() != TokenKind::kComma) {
          return ErrorAt(tokens_.token().pos,
                         absl::StrCat("expected ',' or '}' after JSON object member, found ",
                                      Describe(tokens_.token())));
        }
        RETURN_IF_ERROR(tokens_.Advance());
      }
    }
    default:
      break;
  }
  return ErrorAt(tok.pos, absl::StrCat("expected a string, number, bool, array or object, found ",
                                       Describe(tok)));
}

// {"a/*": {...}, "b": {...}}: every member is an object, so the keys are block labels.
bool JsonParser::IsBlockLabelSet(const JsonNode& node) {
  if (node.kind != Value::Kind::kObject || node.members.empty()) return false;
  for (const JsonMember& member : node.members) {
    if (member.node.kind != Value::Kind::kObject) return false;
  }
  return true;
}

void JsonParser::AppendBlocks(const std::string& type, Position type_pos, JsonNode&& object,
                              Body* body) {
  auto to_attributes = [](JsonNode&& node, Block* block) {
    for (JsonMember& member : node.members) {
      block->attributes.push_back(
          Attribute{std::move(member.key), member.key_pos, ToValue(std::move(member.node))});
    }
  };
  if (IsBlockLabelSet(object)) {
    for (JsonMember& member : object.members) {
      Block block;
      block.type = type;
      block.labels.push_back(std::move(member.key));
      block.pos = member.key_pos;
      to_attributes(std::move(member.node), &block);
      body->blocks.push_back(std::move(block));
    }
  } else {
    Block block;
    block.type = type;
    block.pos = type_pos;
    to_attributes(std::move(object), &block);
    body->blocks.push_back(std::move(block));
  }
}

void JsonParser::MapTopLevelMember(JsonMember&& member, Body* body) {
  JsonNode& node = member.node;
  if (node.kind == Value::Kind::kObject) {
    AppendBlocks(member.key, member.key_pos, std::move(node), body);
    return;
  }
  bool list_of_objects = node.kind == Value::Kind::kList && !node.items.empty();
  for (const JsonNode& item : node.items) {
    if (item.kind != Value::Kind::kObject) list_of_objects = false;
  }
  if (list_of_objects) {
    for (JsonNode& item : node.items) {
      const Position item_pos = item.pos;
      AppendBlocks(member.key, item_pos, std::move(item), body);
    }
    return;
  }
  body->attributes.push_back(
      Attribute{std::move(member.key), member.key_pos, ToValue(std::move(node))});
}

}  // namespace

Value::Value() = default;
Value::Value(const Value&) = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(const Value&) = default;
Value& Value::operator=(Value&&) noexcept = default;
Value::~Value() = default;

std::string Where(const Position& pos) {
  return absl::StrCat("line ", pos.line, ", column ", pos.column);
}

absl::StatusOr<Body> Parse(std::string_view text) {
  if (text.size() > kMaxDocumentBytes) {
    return ErrorAt(Position{1, 1}, absl::StrFormat("expected a document of at most %d bytes, "
                                                   "found %d bytes",
                                                   kMaxDocumentBytes, text.size()));
  }
  // Vault's rule: a document whose first non-blank character is '{' is JSON.
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    return JsonParser(text).ParseDocument();
  }
  return HclParser(text).ParseDocument();
}

}  // namespace strongroom::hcl
