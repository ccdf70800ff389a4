// Literals of the template language as Go reads them (strconv.Unquote, strconv.ParseInt/
// ParseUint/ParseFloat with base prefixes and underscores) and Go's quoting (strconv.Quote).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cli/template/parse.h"

namespace strongroom::tmpl {

// Unquotes a "..." or `...` literal as written (quotes included); nullopt on bad syntax.
std::optional<std::string> UnquoteString(std::string_view quoted);

// Fills `number` from a number token or a character constant ('a', '\n'); on failure returns
// Go's message ("illegal number syntax: \"0x\"", "integer overflow: ...", "invalid syntax",
// "malformed character constant: ...").
std::optional<std::string> ParseNumber(std::string_view text, bool char_constant, Number* number);

// Go's strconv.Quote (ASCII-only = false): printable runes verbatim, others escaped.
std::string GoQuote(std::string_view s);
// Go's strconv.QuoteRune for %q of an integer.
std::string GoQuoteRune(char32_t r);
// Whether Go's strconv.CanBackquote accepts s (for %#q).
bool CanBackquote(std::string_view s);
// Approximation of Go's unicode.IsPrint (ASCII exact; non-ASCII: all but a few format and
// separator characters count as printable).
bool IsPrintRune(char32_t r);

}  // namespace strongroom::tmpl
