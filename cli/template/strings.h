// String concatenation that accepts std::string_view (Debian's Abseil is built with its own
// string_view type, so absl::StrCat does not take std::string_view).
#pragma once

#include <concepts>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace strongroom::tmpl {

namespace internal {
inline void AppendPiece(std::string* out, std::string_view s) { out->append(s); }
inline void AppendPiece(std::string* out, const char* s) { out->append(s); }
inline void AppendPiece(std::string* out, const std::string& s) { out->append(s); }
template <typename T>
requires(std::same_as<T, absl::string_view> &&
         !std::same_as<absl::string_view, std::string_view>) void AppendPiece(std::string* out,
                                                                              const T& s) {
  out->append(s.data(), s.size());
}
template <std::integral T>
requires(!std::same_as<T, char> && !std::same_as<T, bool>) void AppendPiece(std::string* out, T v) {
  out->append(std::to_string(v));
}
}  // namespace internal

// absl::string_view (e.g. Status::message()) as std::string_view.
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// s.find(needle, from) in linear time: glibc's memmem (a Horspool variant up to 256 bytes of
// needle, two-way beyond), where std::string_view::find takes |s| * |needle| steps in the worst
// case (looking for "aaa…ab" in "aaa…a").
inline size_t Find(std::string_view s, std::string_view needle, size_t from = 0) {
  if (from > s.size()) return std::string_view::npos;
  if (needle.empty()) return from;
  const void* hit = memmem(s.data() + from, s.size() - from, needle.data(), needle.size());
  if (hit == nullptr) return std::string_view::npos;
  return static_cast<size_t>(static_cast<const char*>(hit) - s.data());
}

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (internal::AppendPiece(out, args), ...);
}

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  StrAppend(&out, args...);
  return out;
}

}  // namespace strongroom::tmpl
