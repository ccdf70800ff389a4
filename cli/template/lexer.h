// Lexer of the template language (Go text/template's lexical rules): text, and actions between
// configurable delimiters with trim markers ("{{- " and " -}}") and comments ("{{/* ... */}}").
// The whole input is scanned up front into a token vector; a lexical error becomes the last token
// (kind kError) so the parser reports it when it reaches it, as Go's parser does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strongroom::tmpl {

enum class TokenKind {
  kError,  // text is the message
  kEof,
  kText,  // plain text outside actions (trim markers already applied)
  kLeftDelim,
  kRightDelim,
  kComment,
  kSpace,  // run of spaces inside an action
  kLeftParen,
  kRightParen,
  kPipe,          // |
  kAssign,        // =
  kDeclare,       // :=
  kChar,          // any other printable ASCII character, e.g. ','
  kBool,          // true / false
  kCharConstant,  // 'a'
  kNumber,
  kString,      // "..." as written, quotes included
  kRawString,   // `...` as written, quotes included
  kField,       // .Name
  kVariable,    // $ or $name
  kIdentifier,  // function name
  kDot,         // .
  // Keywords.
  kBlock,
  kBreak,
  kContinue,
  kDefine,
  kElse,
  kEnd,
  kIf,
  kNil,
  kRange,
  kTemplate,
  kWith,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  size_t pos = 0;   // byte offset in the input
  size_t line = 1;  // 1-based line of pos
  std::string_view text;
  std::string message;  // kError only
};

// Go's rendering of a token in "unexpected %s in %s" messages.
std::string TokenString(const Token& token);

// Scans `input`. Tokens refer into `input`, which must outlive them. Never fails: errors are
// reported as a final kError token. Work is linear in the input size.
std::vector<Token> Lex(std::string_view input, std::string_view left_delim,
                       std::string_view right_delim);

// Unicode helpers shared with the parser and the formatter.
// Decodes one UTF-8 sequence at s[i]; returns the code point (0xFFFD for an invalid sequence)
// and sets *size to the number of bytes consumed (at least 1).
char32_t DecodeRune(std::string_view s, size_t i, size_t* size);
void AppendRune(std::string* out, char32_t r);
// Go's %#U: "U+0041 'A'" (the quoted form only for printable characters).
std::string RuneDescription(char32_t r);

}  // namespace strongroom::tmpl
