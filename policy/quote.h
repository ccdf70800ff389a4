// Quoting of policy text (paths, capability names, selectors) inside error messages. Policy text is
// operator-written and not secret, but it may hold any byte sequence the parser accepted, and the
// message ends up in HTTP responses and logs: escape it and keep it short.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::policy {

inline std::string QuoteForError(std::string_view s) {
  constexpr size_t kMax = 128;
  const bool cut = s.size() > kMax;
  if (cut) s = s.substr(0, kMax);
  return absl::StrCat("\"", absl::CHexEscape(Av(s)), cut ? "...\"" : "\"");
}

}  // namespace strongroom::policy
